package mq_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/IBM/sarama"

	"seckill/activity"
	"seckill/activity/mysql"
	"seckill/internal/testenv"
	"seckill/mq"
	"seckill/stock"
)

// tokenMessages decodes the messages of the tokens topic, failing on one
// that is not of the documented schema, keyed by its activity, with the
// schema header.
func tokenMessages(t *testing.T, msgs []*sarama.ConsumerMessage) []mq.TokenMessage {
	t.Helper()
	out := make([]mq.TokenMessage, 0, len(msgs))
	for _, m := range msgs {
		tm, err := mq.DecodeToken(m.Value)
		if err != nil {
			t.Fatalf("message at %d/%d: %v: %s", m.Partition, m.Offset, err, m.Value)
		}
		if string(m.Key) != strconv.FormatInt(tm.ActivityID, 10) {
			t.Errorf("token of activity %d keyed %q", tm.ActivityID, m.Key)
		}
		if len(m.Headers) != 1 || string(m.Headers[0].Key) != "schema" || string(m.Headers[0].Value) != mq.TokenSchema {
			t.Errorf("token %s: headers %v, want schema: %s", tm.Token, m.Headers, mq.TokenSchema)
		}
		out = append(out, tm)
	}
	return out
}

// checkTokenMessages fails unless every record of want is among msgs at
// least once with its fields, dups times at most, and nothing else is.
func checkTokenMessages(t *testing.T, msgs []mq.TokenMessage, want []activity.Participation, dups int) {
	t.Helper()
	byToken := map[string]activity.Participation{}
	for _, p := range want {
		byToken[p.Token] = p
	}
	seen := map[string]int{}
	for _, m := range msgs {
		p, ok := byToken[m.Token]
		if !ok {
			t.Errorf("token %s published, not a valid record of the test", m.Token)
			continue
		}
		seen[m.Token]++
		if m.ActivityID != p.ActivityID || m.Slot != p.Slot || m.UserID != p.UserID || !m.IssuedAt.Equal(p.IssuedAt) ||
			m.Epoch != max(p.Epoch, 1) {
			t.Errorf("message %+v does not match its record %+v", m, p)
		}
	}
	for tok := range byToken {
		if seen[tok] == 0 {
			t.Errorf("valid token %s never published", tok)
		}
		if seen[tok] > dups {
			t.Errorf("token %s published %d times, want at most %d", tok, seen[tok], dups)
		}
	}
}

func startPublisher(t *testing.T, cfg mq.Config, outbox mq.Outbox, lease mq.Leaser) *mq.TokenPublisher {
	t.Helper()
	p, err := mq.NewTokenPublisher(cfg, outbox, lease, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	p.Start(context.Background())
	t.Cleanup(func() { p.Close() })
	return p
}

func recordWith(t *testing.T, repo *mysql.Repository, ps []activity.Participation, status func(i int) activity.RecordStatus) (valid []activity.Participation) {
	t.Helper()
	for i := range ps {
		ps[i].Status = status(i)
		if ps[i].Status == activity.RecordValid {
			valid = append(valid, ps[i])
		}
	}
	if err := repo.RecordBatch(context.Background(), ps); err != nil {
		t.Fatal(err)
	}
	return valid
}

func waitOutboxEmpty(t *testing.T, repo *mysql.Repository) {
	t.Helper()
	waitUntil(t, "the outbox is empty", func() bool {
		ps, err := repo.Unpublished(context.Background(), 1)
		return err == nil && len(ps) == 0
	})
}

// tokensConfig is the Config of a broker of the test's own, with its tokens
// topic made.
func tokensConfig(t *testing.T) mq.Config {
	t.Helper()
	cfg := newConfig(t, startBroker(t))
	cfg.TokensTopic = cfg.Topic + "-tokens"
	if _, err := mq.EnsureTopics(cfg, 3); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestTokenPublisher: of two publishers sharing the lease, one publishes
// every valid record once, keyed by activity and of the documented schema,
// and no pending or void one; when it stops, the other takes over.
func TestTokenPublisher(t *testing.T) {
	cfg := tokensConfig(t)
	repo := mysql.NewRepository(testenv.MySQL(t))
	rdb, prefix := testenv.Redis(t)
	store := stock.New(rdb, stock.Options{Prefix: prefix})
	t.Cleanup(store.Stop)

	statuses := []activity.RecordStatus{activity.RecordValid, activity.RecordVoid, activity.RecordPending, activity.RecordValid}
	byIndex := func(i int) activity.RecordStatus { return statuses[i%len(statuses)] }
	var valid []activity.Participation
	for _, id := range []int64{71, 72, 73} {
		valid = append(valid, recordWith(t, repo, makeParticipations(t, id, 40), byIndex)...)
	}
	first := startPublisher(t, cfg, repo, store)
	startPublisher(t, cfg, repo, store)
	waitOutboxEmpty(t, repo)
	checkTokenMessages(t, tokenMessages(t, readTopic(t, cfg.Brokers, cfg.TokensTopic, len(valid))), valid, 1)

	// The first publisher gave its lease back; whichever holds it now
	// publishes what comes next.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	more := recordWith(t, repo, makeParticipations(t, 74, 10), func(int) activity.RecordStatus { return activity.RecordValid })
	waitOutboxEmpty(t, repo)
	all := append(slices.Clone(valid), more...)
	checkTokenMessages(t, tokenMessages(t, readTopic(t, cfg.Brokers, cfg.TokensTopic, len(all))), all, 1)
}

// failingMarks is an outbox whose marks fail the first times.
type failingMarks struct {
	*mysql.Repository
	fails atomic.Int32
}

func (f *failingMarks) MarkPublished(ctx context.Context, tokens []string) error {
	if f.fails.Add(-1) >= 0 {
		return errors.New("mark lost")
	}
	return f.Repository.MarkPublished(ctx, tokens)
}

// TestTokenPublisherMarkFails: tokens the broker acknowledged but whose
// mark failed (a crash between the two) are published again: at least
// once, never lost.
func TestTokenPublisherMarkFails(t *testing.T) {
	cfg := tokensConfig(t)
	repo := mysql.NewRepository(testenv.MySQL(t))
	valid := recordWith(t, repo, makeParticipations(t, 81, 20), func(int) activity.RecordStatus { return activity.RecordValid })
	outbox := &failingMarks{Repository: repo}
	outbox.fails.Store(2)
	p, err := mq.NewTokenPublisher(cfg, outbox, nil, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var failed atomic.Int32
	p.Failed = func() { failed.Add(1) }
	p.Start(context.Background())
	waitOutboxEmpty(t, repo)
	msgs := tokenMessages(t, readTopic(t, cfg.Brokers, cfg.TokensTopic, 3*len(valid)))
	checkTokenMessages(t, msgs, valid, 3)
	if len(msgs) != 3*len(valid) {
		t.Errorf("%d messages, want each of %d tokens three times (two marks failed)", len(msgs), len(valid))
	}
	if failed.Load() != 2 {
		t.Errorf("%d failed cycles counted, want 2", failed.Load())
	}
}

// TestTokenPublisherStopFlushes: Stop publishes what the outbox holds before
// it returns, also records written after the loop's last cycle.
func TestTokenPublisherStopFlushes(t *testing.T) {
	cfg := tokensConfig(t)
	repo := mysql.NewRepository(testenv.MySQL(t))
	p, err := mq.NewTokenPublisher(cfg, repo, nil, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// Never started: only Stop publishes, and more than a page.
	valid := recordWith(t, repo, makeParticipations(t, 91, mq.PublishBatch+5), func(int) activity.RecordStatus { return activity.RecordValid })
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if ps, err := repo.Unpublished(ctx, 1); err != nil || len(ps) != 0 {
		t.Fatalf("after Stop: %d unpublished (%v), want none", len(ps), err)
	}
	checkTokenMessages(t, tokenMessages(t, readTopic(t, cfg.Brokers, cfg.TokensTopic, len(valid))), valid, 1)
}

func TestTokenMessageRoundTrip(t *testing.T) {
	p := makeParticipations(t, 42, 1)[0]
	p.Epoch = 3
	b, err := mq.EncodeToken(p)
	if err != nil {
		t.Fatal(err)
	}
	m, err := mq.DecodeToken(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Token != p.Token || m.ActivityID != 42 || m.Slot != p.Slot || m.UserID != p.UserID || !m.IssuedAt.Equal(p.IssuedAt) || m.Epoch != 3 {
		t.Fatalf("decoded %+v from %s, want %+v", m, b, p)
	}
	for _, bad := range []string{`{}`, `{"v":2}`, `not json`, string(b[:len(b)-2]) + `}`} {
		if _, err := mq.DecodeToken([]byte(bad)); err == nil {
			t.Errorf("DecodeToken(%s) accepted it", bad)
		}
	}
}
