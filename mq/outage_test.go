package mq_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"seckill/activity"
	"seckill/activity/mysql"
	"seckill/internal/testenv"
)

// cuttableMySQL returns a migrated database of the test's own, opened
// directly, and the same database through a proxy that the test can cut.
func cuttableMySQL(t *testing.T) (direct, through *sqlx.DB, proxy *testenv.Proxy) {
	t.Helper()
	ctx := context.Background()
	dsn := testenv.DatabaseDSN(t)
	direct, err := mysql.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Close() })
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy = testenv.NewProxy(t, cfg.Addr)
	return direct, testenv.MySQLAt(t, dsn, proxy.Addr()), proxy
}

// watchedSink writes into MySQL and counts the writes it was asked for and
// those that failed.
type watchedSink struct {
	repo            *mysql.Repository
	mu              sync.Mutex
	calls, failures int
}

func (s *watchedSink) StoreEvents(ctx context.Context, ps []activity.Participation) error {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	err := s.repo.RecordBatch(ctx, ps)
	if err != nil {
		s.mu.Lock()
		s.failures++
		s.mu.Unlock()
	}
	return err
}

func (s *watchedSink) called() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *watchedSink) failed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failures
}

// TestConsumerRetriesWhileMySQLIsDown: the consumer reads events while
// MySQL is down. It keeps retrying the batch and commits no offset for it,
// however many commit intervals pass; once MySQL is back the same consumer
// writes every event, and only then commits.
func TestConsumerRetriesWhileMySQLIsDown(t *testing.T) {
	const activityID = 17
	e := startBroker(t)
	cfg := newConfig(t, e)
	direct, through, proxy := cuttableMySQL(t)
	p := newProducer(t, cfg)
	ps := makeParticipations(t, activityID, 50)
	partition := partitionOf(t, activityID, 3)

	proxy.Cut()
	recordAll(t, p, ps)
	sink := &watchedSink{repo: mysql.NewRepository(through)}
	w := &lagWatch{}
	logs := &testenv.Buffer{}
	startLoggedConsumer(t, cfg, sink, w, slog.New(slog.NewTextHandler(logs, nil)))
	// Five failed writes take 1.5 s of back-off: more than one auto-commit
	// interval (1 s).
	waitUntil(t, "the consumer failed to write five times", func() bool { return sink.failed() >= 5 })
	if off := committedOffset(t, cfg, partition); off >= 0 {
		t.Fatalf("offset %d committed while no event could be written", off)
	}
	if n := countRows(t, direct, activityID); n != 0 {
		t.Fatalf("%d rows reached MySQL through a cut connection: the outage was not real", n)
	}
	// The back-off doubles from 100 ms up to 5 s: the fifth failure comes
	// 1.5 s into the outage and the sixth 1.6 s later, the seventh 3.2 s
	// after that.
	time.Sleep(500 * time.Millisecond)
	if n := sink.failed(); n > 6 {
		t.Fatalf("%d failed writes in the outage: the consumer retries without backing off", n)
	}
	if !strings.Contains(logs.String(), "writing participation records failed; retrying") {
		t.Fatalf("the outage was not logged:\n%s", logs)
	}

	proxy.Restore()
	waitRows(t, direct, activityID, len(ps))
	waitUntil(t, "the consumer caught up", func() bool { return w.caughtUp(partition) })
	checkTokens(t, direct, activityID, ps)
	waitUntil(t, "the written events are committed", func() bool {
		return committedOffset(t, cfg, partition) == int64(len(ps))
	})
}

// TestConsumerClosedWhileMySQLIsDown: a consumer reads a batch it cannot
// write, MySQL refusing connections or taking the write and not answering,
// and is closed, which commits the offsets it marked. It must not have
// marked the batch: a new consumer, once MySQL is back, writes every event.
func TestConsumerClosedWhileMySQLIsDown(t *testing.T) {
	for _, tc := range []struct {
		name         string
		outage, mend func(*testenv.Proxy)
	}{
		{"Refused", (*testenv.Proxy).Cut, (*testenv.Proxy).Restore},
		{"Hanging", func(p *testenv.Proxy) { p.Delay(time.Hour) }, func(p *testenv.Proxy) { p.Delay(0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const activityID = 19
			e := startBroker(t)
			cfg := newConfig(t, e)
			direct, through, proxy := cuttableMySQL(t)
			if err := through.Ping(); err != nil {
				t.Fatal(err) // the write hangs on a connection that was open
			}
			p := newProducer(t, cfg)
			ps := makeParticipations(t, activityID, 50)
			partition := partitionOf(t, activityID, 3)

			tc.outage(proxy)
			recordAll(t, p, ps)
			sink := &watchedSink{repo: mysql.NewRepository(through)}
			first := startSinkConsumer(t, cfg, sink, nil)
			waitUntil(t, "the consumer read a batch and tried to write it", func() bool { return sink.called() >= 1 })
			if err := first.Close(); err != nil {
				t.Fatalf("close the consumer: %v", err)
			}
			if off := committedOffset(t, cfg, partition); off >= 0 {
				t.Fatalf("offset %d committed by a consumer that wrote nothing", off)
			}

			tc.mend(proxy)
			startConsumer(t, cfg, direct, nil)
			waitRows(t, direct, activityID, len(ps))
			checkTokens(t, direct, activityID, ps)
		})
	}
}
