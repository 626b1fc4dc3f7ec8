package mq_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/jmoiron/sqlx"

	"seckill/activity"
	"seckill/activity/mysql"
	"seckill/internal/testenv"
	"seckill/mq"
)

// waitLimit is how long a test waits for something that takes milliseconds
// when all is well; it only bounds how long a broken test hangs.
const waitLimit = 30 * time.Second

func newSigner(t testing.TB) *activity.Signer {
	t.Helper()
	secret := make([]byte, activity.MinSecretLen)
	_, _ = rand.Read(secret)
	s, err := activity.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// makeParticipations returns n participations of an activity, each with its
// own slot, user, claim and token.
func makeParticipations(t testing.TB, activityID int64, n int) []activity.Participation {
	t.Helper()
	signer := newSigner(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	ps := make([]activity.Participation, n)
	for i := range ps {
		var nonce [12]byte
		_, _ = rand.Read(nonce[:8])
		binary.BigEndian.PutUint32(nonce[8:], uint32(i))
		slot := int64(i + 1)
		ps[i] = activity.Participation{
			Token:      signer.Sign(activityID, slot, nonce),
			ActivityID: activityID,
			Slot:       slot,
			UserID:     "user-" + strconv.Itoa(i),
			ClaimID:    base64.RawURLEncoding.EncodeToString(nonce[:]),
			IssuedAt:   now,
		}
	}
	return ps
}

func startBroker(t testing.TB) *mq.Embedded {
	t.Helper()
	e, err := mq.StartEmbedded(t.TempDir(), "127.0.0.1:0", mq.DefaultPartitions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// newConfig returns a config with a topic and group of the test's own, and
// creates the topics.
func newConfig(t testing.TB, e *mq.Embedded) mq.Config {
	t.Helper()
	return newConfigAt(t, e.Brokers())
}

// newConfigAt is newConfig on the brokers at addrs.
func newConfigAt(t testing.TB, addrs []string) mq.Config {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())) + "-" + hex.EncodeToString(b)
	cfg := mq.Config{Brokers: addrs, Topic: "participations-" + name, Group: "group-" + name}
	if _, err := mq.EnsureTopics(cfg, 3); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newProducer(t testing.TB, cfg mq.Config) *mq.Producer {
	t.Helper()
	p, err := mq.NewProducer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// recordAll records ps one after another and fails the test on an error.
func recordAll(t *testing.T, p *mq.Producer, ps []activity.Participation) {
	t.Helper()
	for _, part := range ps {
		if err := p.Record(context.Background(), part); err != nil {
			t.Fatalf("record slot %d: %v", part.Slot, err)
		}
	}
}

// lagWatch remembers the lag a consumer last reported on each partition.
type lagWatch struct {
	mu  sync.Mutex
	lag map[int32]int64
}

func (w *lagWatch) hook(c *mq.Consumer) {
	w.lag = map[int32]int64{}
	c.Lag = func(partition int32, lag int64) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.lag[partition] = lag
	}
}

// caughtUp reports whether the consumer reported lag 0 on partition.
func (w *lagWatch) caughtUp(partition int32) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	lag, ok := w.lag[partition]
	return ok && lag == 0
}

// startConsumer starts a consumer writing into db; it is closed when the
// test ends, if the test has not closed it before.
func startConsumer(t testing.TB, cfg mq.Config, db *sqlx.DB, w *lagWatch) *mq.Consumer {
	t.Helper()
	return startSinkConsumer(t, cfg, &watchedSink{repo: mysql.NewRepository(db)}, w)
}

// startSinkConsumer starts a consumer writing into sink; it is closed when
// the test ends, if the test has not closed it before.
func startSinkConsumer(t testing.TB, cfg mq.Config, sink mq.Sink, w *lagWatch) *mq.Consumer {
	t.Helper()
	return startLoggedConsumer(t, cfg, sink, w, testenv.Logger(t))
}

// startLoggedConsumer is startSinkConsumer logging to log.
func startLoggedConsumer(t testing.TB, cfg mq.Config, sink mq.Sink, w *lagWatch, log *slog.Logger) *mq.Consumer {
	t.Helper()
	c, err := mq.NewConsumer(cfg, sink, log)
	if err != nil {
		t.Fatal(err)
	}
	if w != nil {
		w.hook(c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.Start(ctx)
	t.Cleanup(func() {
		cancel()
		c.Close()
	})
	return c
}

func countRows(t testing.TB, db *sqlx.DB, activityID int64) int {
	t.Helper()
	var n int
	if err := db.Get(&n, "SELECT COUNT(*) FROM participations WHERE activity_id = ?", activityID); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitRows waits until the activity has at least want rows, and fails if it
// gets more.
func waitRows(t testing.TB, db *sqlx.DB, activityID int64, want int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		n := countRows(t, db, activityID)
		if n > want {
			t.Fatalf("activity %d has %d participation rows, want %d", activityID, n, want)
		}
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("activity %d has %d participation rows after %v, want %d", activityID, n, waitLimit, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitUntil polls cond until it holds, failing after waitLimit.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting until %s", waitLimit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkTokens fails unless the activity's rows hold exactly the tokens of ps.
func checkTokens(t *testing.T, db *sqlx.DB, activityID int64, ps []activity.Participation) {
	t.Helper()
	var got []string
	if err := db.Select(&got, "SELECT token FROM participations WHERE activity_id = ? ORDER BY token", activityID); err != nil {
		t.Fatal(err)
	}
	want := make([]string, len(ps))
	for i, p := range ps {
		want[i] = p.Token
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("activity %d has %d rows whose tokens are not the %d recorded", activityID, len(got), len(want))
	}
}

// partitionOf returns the partition the events of an activity go to.
func partitionOf(t *testing.T, activityID int64, partitions int32) int32 {
	t.Helper()
	p, err := sarama.NewHashPartitioner("").Partition(&sarama.ProducerMessage{
		Key: sarama.StringEncoder(strconv.FormatInt(activityID, 10)),
	}, partitions)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestProducerKeepsSaramaPartitions: every activity's events go to the
// partition sarama's hash partitioner gave them, the one the consumer's
// offsets and events already written were keyed on.
func TestProducerKeepsSaramaPartitions(t *testing.T) {
	const partitions = 12
	e := startBroker(t)
	cfg := newConfig(t, e)
	cfg.Topic += "-wide"
	if _, err := mq.EnsureTopics(cfg, partitions); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, cfg)
	var ids []int64
	for id := int64(1); id <= 300; id++ {
		ids = append(ids, id)
	}
	ids = append(ids, 1<<31, 1<<32+7, 1<<53, math.MaxInt64)
	for _, id := range ids {
		recordAll(t, p, makeParticipations(t, id, 1))
	}
	seen := map[int64]bool{}
	used := map[int32]bool{}
	for _, m := range readTopic(t, cfg.Brokers, cfg.Topic, len(ids)) {
		id, err := strconv.ParseInt(string(m.Key), 10, 64)
		if err != nil {
			t.Fatalf("key %q: %v", m.Key, err)
		}
		if want := partitionOf(t, id, partitions); m.Partition != want {
			t.Errorf("activity %d on partition %d, sarama's hash partitioner gives %d", id, m.Partition, want)
		}
		seen[id] = true
		used[m.Partition] = true
	}
	if len(seen) != len(ids) {
		t.Fatalf("events of %d activities read, want %d", len(seen), len(ids))
	}
	t.Logf("%d activities over %d of %d partitions", len(ids), len(used), partitions)
}

// TestProducerJoinGivingUpFailsOnlyItself: joins of one activity whose
// clients went away (their ctx done as they record) do not make the other
// joins of the activity, whose events share their partition's batches, fail.
func TestProducerJoinGivingUpFailsOnlyItself(t *testing.T) {
	e := startBroker(t)
	cfg := newConfig(t, e)
	p := newProducer(t, cfg)
	ps := makeParticipations(t, 61, 400)
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	errs := make([]error, len(ps))
	var wg sync.WaitGroup
	for i, part := range ps {
		ctx := context.Background()
		if i%2 == 0 {
			ctx = gone
		}
		wg.Go(func() { errs[i] = p.Record(ctx, part) })
	}
	wg.Wait()
	for i := 1; i < len(ps); i += 2 {
		if errs[i] != nil {
			t.Fatalf("a join that waited failed beside joins that gave up: %v", errs[i])
		}
	}
}

func TestProducerConcurrentRecordsReachMySQL(t *testing.T) {
	e := startBroker(t)
	cfg := newConfig(t, e)
	db := testenv.MySQL(t)
	p := newProducer(t, cfg)

	// Three activities, so that the events spread over the partitions.
	ids := []int64{101, 102, 103}
	var all []activity.Participation
	for _, id := range ids {
		all = append(all, makeParticipations(t, id, 200/len(ids)+1)...)
	}
	all = all[:200]

	errs := make(chan error, len(all))
	var wg sync.WaitGroup
	for _, part := range all {
		wg.Go(func() { errs <- p.Record(context.Background(), part) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent record: %v", err)
		}
	}

	w := &lagWatch{}
	startConsumer(t, cfg, db, w)
	byActivity := map[int64][]activity.Participation{}
	for _, part := range all {
		byActivity[part.ActivityID] = append(byActivity[part.ActivityID], part)
	}
	for _, id := range ids {
		waitRows(t, db, id, len(byActivity[id]))
		waitUntil(t, fmt.Sprintf("the consumer caught up with activity %d", id),
			func() bool { return w.caughtUp(partitionOf(t, id, 3)) })
		checkTokens(t, db, id, byActivity[id])
	}
}

func TestConsumerRestartAndRedeliveryRecordEachEventOnce(t *testing.T) {
	const activityID = 7
	e := startBroker(t)
	cfg := newConfig(t, e)
	db := testenv.MySQL(t)
	p := newProducer(t, cfg)
	all := makeParticipations(t, activityID, 100)
	first, second := all[:50], all[50:]
	partition := partitionOf(t, activityID, 3)

	recordAll(t, p, first)
	w1 := &lagWatch{}
	c1 := startConsumer(t, cfg, db, w1)
	waitRows(t, db, activityID, len(first))
	waitUntil(t, "the first consumer caught up", func() bool { return w1.caughtUp(partition) })
	if err := c1.Close(); err != nil {
		t.Fatalf("close the first consumer: %v", err)
	}
	t.Run("CloseCommitsOffsets", func(t *testing.T) {
		// The next consumer resumes after the first half instead of
		// reading it again.
		if off := committedOffset(t, cfg, partition); off != int64(len(first)) {
			t.Fatalf("committed offset %d on partition %d, want %d", off, partition, len(first))
		}
	})

	// While no consumer runs: the rest of the stream, and the first half
	// again, as a producer retry or a replayed batch would deliver it.
	recordAll(t, p, second)
	recordAll(t, p, first)
	if n := countRows(t, db, activityID); n != len(first) {
		t.Fatalf("%d rows while no consumer runs, want %d", n, len(first))
	}

	w2 := &lagWatch{}
	startConsumer(t, cfg, db, w2)
	waitRows(t, db, activityID, len(all))
	// Lag 0 after a batch means the consumer has read and written every
	// event on the partition, duplicates included: the count is final.
	waitUntil(t, "the second consumer caught up", func() bool { return w2.caughtUp(partition) })

	t.Run("ExactlyOneRowPerToken", func(t *testing.T) {
		if n := countRows(t, db, activityID); n != len(all) {
			t.Fatalf("%d rows, want %d", n, len(all))
		}
		checkTokens(t, db, activityID, all)
	})
}

// committedOffset returns the offset the test's group has committed on a
// partition of its topic, or -1.
func committedOffset(t *testing.T, cfg mq.Config, partition int32) int64 {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Version = mq.ProtocolVersion()
	admin, err := sarama.NewClusterAdmin(cfg.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	res, err := admin.ListConsumerGroupOffsets(cfg.Group, map[string][]int32{cfg.Topic: {partition}})
	if err != nil {
		t.Fatal(err)
	}
	b := res.GetBlock(cfg.Topic, partition)
	if b == nil {
		t.Fatalf("no offset block for %s/%d", cfg.Topic, partition)
	}
	if b.Err != sarama.ErrNoError {
		t.Fatalf("offset of %s/%d: %v", cfg.Topic, partition, b.Err)
	}
	return b.Offset
}

// syncProducer is a plain sarama producer, for messages the service would
// never send.
func syncProducer(t *testing.T, cfg mq.Config) sarama.SyncProducer {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Version = mq.ProtocolVersion()
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Partitioner = sarama.NewHashPartitioner
	sp, err := sarama.NewSyncProducer(cfg.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return sp
}

func TestConsumerParksUndecodableEvents(t *testing.T) {
	const activityID = 9
	e := startBroker(t)
	cfg := newConfig(t, e)
	db := testenv.MySQL(t)
	sp := syncProducer(t, cfg)
	good := makeParticipations(t, activityID, 30)
	key := sarama.StringEncoder(strconv.FormatInt(activityID, 10))

	badVersion, err := mq.EncodeEvent(good[0])
	if err != nil {
		t.Fatal(err)
	}
	badVersion = []byte(strings.Replace(string(badVersion), `"v":1`, `"v":99`, 1))
	garbage := map[string]bool{"\x00garbage, not an event": true, string(badVersion): true}
	send := func(value []byte) (int32, int64) {
		t.Helper()
		part, off, err := sp.SendMessage(&sarama.ProducerMessage{Topic: cfg.Topic, Key: key, Value: sarama.ByteEncoder(value)})
		if err != nil {
			t.Fatal(err)
		}
		return part, off
	}
	sendGood := func(ps []activity.Participation) int32 {
		t.Helper()
		var part int32
		for _, p := range ps {
			b, err := mq.EncodeEvent(p)
			if err != nil {
				t.Fatal(err)
			}
			part, _ = send(b)
		}
		return part
	}

	partition := sendGood(good[:10])
	gp1, _ := send([]byte("\x00garbage, not an event"))
	sendGood(good[10:20])
	gp2, _ := send(badVersion)
	last := sendGood(good[20:])
	if gp1 != partition || gp2 != partition || last != partition {
		t.Fatalf("events went to partitions %d, %d, %d, %d; the test needs them on one", partition, gp1, gp2, last)
	}

	w := &lagWatch{}
	startConsumer(t, cfg, db, w)

	t.Run("GoodEventsAfterGarbageRecorded", func(t *testing.T) {
		waitRows(t, db, activityID, len(good))
		waitUntil(t, "the consumer caught up", func() bool { return w.caughtUp(partition) })
		checkTokens(t, db, activityID, good)
	})

	t.Run("GarbageOnDeadLetterTopicWithError", func(t *testing.T) {
		dead := readTopic(t, cfg.Brokers, cfg.DeadLetterTopic(), len(garbage))
		for _, m := range dead {
			if !garbage[string(m.Value)] {
				t.Errorf("dead-letter topic holds %q, which was not garbage", m.Value)
				continue
			}
			delete(garbage, string(m.Value))
			headers := map[string]string{}
			for _, h := range m.Headers {
				headers[string(h.Key)] = string(h.Value)
			}
			if headers["error"] == "" {
				t.Errorf("parked message %q has no error header; headers %v", m.Value, headers)
			}
			if !strings.HasPrefix(headers["source"], cfg.Topic+"/"+strconv.Itoa(int(partition))+"/") {
				t.Errorf("parked message %q has source %q, want %s/%d/<offset>", m.Value, headers["source"], cfg.Topic, partition)
			}
			if string(m.Key) != string(key) {
				t.Errorf("parked message %q has key %q, want %q", m.Value, m.Key, key)
			}
		}
		for g := range garbage {
			t.Errorf("garbage %q was not parked", g)
		}
	})
}

// readTopic reads every partition of a topic from the oldest offset until it
// has n messages, and then briefly for more.
func readTopic(t *testing.T, brokers []string, topic string, n int) []*sarama.ConsumerMessage {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Version = mq.ProtocolVersion()
	consumer, err := sarama.NewConsumer(brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	parts, err := consumer.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	msgs := make(chan *sarama.ConsumerMessage)
	done := make(chan struct{})
	var pcs []sarama.PartitionConsumer
	defer func() {
		close(done) // first, so that no forwarder blocks a partition consumer's Close
		for _, pc := range pcs {
			pc.Close()
		}
	}()
	for _, part := range parts {
		pc, err := consumer.ConsumePartition(topic, part, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		pcs = append(pcs, pc)
		go func() {
			for m := range pc.Messages() {
				select {
				case msgs <- m:
				case <-done:
					return
				}
			}
		}()
	}
	var got []*sarama.ConsumerMessage
	timeout := time.After(waitLimit)
	for len(got) < n {
		select {
		case m := <-msgs:
			got = append(got, m)
		case <-timeout:
			t.Fatalf("%s: %d messages after %v, want %d", topic, len(got), waitLimit, n)
		}
	}
	// Anything beyond n that is already there would be a duplicate or a
	// message parked by mistake.
	extra := time.After(500 * time.Millisecond)
	for {
		select {
		case m := <-msgs:
			got = append(got, m)
		case <-extra:
			return got
		}
	}
}

func TestProducerBrokerDown(t *testing.T) {
	const activityID = 11
	dir := t.TempDir()
	e, err := mq.StartEmbedded(dir, "127.0.0.1:0", mq.DefaultPartitions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	_, portStr, err := net.SplitHostPort(e.Brokers()[0])
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := newConfig(t, e)
	cfg.ProduceTimeout = time.Second
	db := testenv.MySQL(t)
	p := newProducer(t, cfg)
	ps := makeParticipations(t, activityID, 200)
	var acked []activity.Participation
	if err := p.Record(context.Background(), ps[0]); err != nil {
		t.Fatalf("record while the broker is up: %v", err)
	}
	acked = append(acked, ps[0])
	ps = ps[1:]

	e.Close()

	t.Run("RecordFailsUnavailable", func(t *testing.T) {
		// Several joins at once, and then one more after they failed.
		for _, batch := range [][]activity.Participation{ps[:5], ps[5:6]} {
			done := make(chan error, len(batch))
			for _, part := range batch {
				go func() { done <- p.Record(context.Background(), part) }()
			}
			timeout := time.After(waitLimit)
			for range batch {
				select {
				case err := <-done:
					if !errors.Is(err, activity.ErrUnavailable) {
						t.Fatalf("record while the broker is down: %v, want ErrUnavailable", err)
					}
					t.Logf("record while the broker is down: %v", err)
				case <-timeout:
					t.Fatalf("record still waiting %v after the broker went down, with a produce timeout of %v",
						waitLimit, cfg.ProduceTimeout)
				}
			}
		}
	})
	ps = ps[6:]

	restarted := time.Now()
	e2, err := mq.StartEmbedded(dir, fmt.Sprintf("127.0.0.1:%d", port), mq.DefaultPartitions)
	if err != nil {
		t.Fatalf("restart the broker on port %d: %v", port, err)
	}
	t.Cleanup(e2.Close)

	t.Run("SameProducerRecoversAfterRestart", func(t *testing.T) {
		var errs []string
		failed := 0
		deadline := time.Now().Add(waitLimit)
		for {
			part := ps[0]
			ps = ps[1:]
			err := p.Record(context.Background(), part)
			if err == nil {
				acked = append(acked, part)
				break
			}
			failed++
			if len(errs) == 0 || errs[len(errs)-1] != err.Error() {
				errs = append(errs, err.Error())
			}
			if time.Now().After(deadline) || len(ps) == 0 {
				t.Fatalf("the producer still fails %v after the broker came back; its errors, in order:\n%s",
					waitLimit, strings.Join(errs, "\n"))
			}
			time.Sleep(200 * time.Millisecond)
		}
		// The producer looks for the broker again within about a second
		// (metadata refreshed 200 ms apart at the least, retries at most
		// 1.2 s apart, TestRetryBackoff): a record every 200 ms, each
		// failing after the 1 s produce timeout, fails once or twice here.
		// How many is the machine's timing, so it is logged, not judged.
		t.Logf("recovered %v after the restart, after %d failed records; errors: %q",
			time.Since(restarted).Round(time.Millisecond), failed, errs)
		// Not a lucky one: it keeps working.
		for _, part := range ps[:10] {
			if err := p.Record(context.Background(), part); err != nil {
				t.Fatalf("record after recovery: %v", err)
			}
			acked = append(acked, part)
		}
		ps = ps[10:]
	})

	t.Run("NewProducerRecordsAfterRestart", func(t *testing.T) {
		p2 := newProducer(t, cfg)
		if err := p2.Record(context.Background(), ps[0]); err != nil {
			t.Fatalf("record with a new producer: %v", err)
		}
		acked = append(acked, ps[0])
		ps = ps[1:]
	})

	t.Run("AcknowledgedRecordsSurviveRestart", func(t *testing.T) {
		startConsumer(t, cfg, db, nil)
		waitTokens(t, db, acked)
	})
}

func TestProducerClose(t *testing.T) {
	const activityID = 13
	e := startBroker(t)
	cfg := newConfig(t, e)
	db := testenv.MySQL(t)
	p, err := mq.NewProducer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ps := makeParticipations(t, activityID, 5000)
	firstAck := make(chan struct{})
	var once sync.Once
	p.Observe = func(_ time.Duration, err error) {
		if err == nil {
			once.Do(func() { close(firstAck) })
		}
	}

	// Workers record until Record fails, so that when Close comes several
	// records are in flight. Each must end acknowledged or failed: Close
	// neither panics nor leaves a caller waiting.
	const workers = 20
	var (
		mu    sync.Mutex
		acked []activity.Participation
		wg    sync.WaitGroup
	)
	last := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(ps); i += workers {
				if last[w] = p.Record(context.Background(), ps[i]); last[w] != nil {
					return
				}
				mu.Lock()
				acked = append(acked, ps[i])
				mu.Unlock()
			}
		})
	}
	select {
	case <-firstAck:
	case <-time.After(waitLimit):
		t.Fatal("no record acknowledged")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	wg.Wait()
	t.Logf("%d records were acknowledged before and during Close", len(acked))

	t.Run("RecordsRacingCloseFailUnavailable", func(t *testing.T) {
		for w, err := range last {
			if err == nil {
				t.Fatalf("worker %d recorded all its events: Close came too late for the test", w)
			}
			if !errors.Is(err, activity.ErrUnavailable) {
				t.Errorf("worker %d: record racing close: %v, want ErrUnavailable", w, err)
			}
		}
	})
	t.Run("RecordAfterCloseFails", func(t *testing.T) {
		err := p.Record(context.Background(), makeParticipations(t, activityID, 1)[0])
		if !errors.Is(err, activity.ErrUnavailable) {
			t.Fatalf("record after close: %v, want ErrUnavailable", err)
		}
	})
	t.Run("SecondCloseIsHarmless", func(t *testing.T) {
		if err := p.Close(); err != nil {
			t.Fatalf("second close: %v", err)
		}
	})
	t.Run("AcknowledgedRecordsAreDurable", func(t *testing.T) {
		startConsumer(t, cfg, db, nil)
		waitTokens(t, db, acked)
	})
}

// waitTokens waits until every participation of ps has its row. Others may
// be there too: a record that failed may still have been written.
func waitTokens(t *testing.T, db *sqlx.DB, ps []activity.Participation) {
	t.Helper()
	want := map[string]bool{}
	for _, p := range ps {
		want[p.Token] = true
	}
	var missing int
	deadline := time.Now().Add(waitLimit)
	for {
		var got []string
		if err := db.Select(&got, "SELECT token FROM participations"); err != nil {
			t.Fatal(err)
		}
		missing = len(want)
		for _, tok := range got {
			if want[tok] {
				missing--
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged records are not in MySQL after %v", missing, len(want), waitLimit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
