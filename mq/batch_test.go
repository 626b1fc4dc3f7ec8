package mq_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"seckill/activity"
	"seckill/internal/testenv"
	"seckill/mq"
)

// memSink keeps what the consumer writes, batch by batch.
type memSink struct {
	mu      sync.Mutex
	batches []int
	events  int
}

func (s *memSink) StoreEvents(_ context.Context, ps []activity.Participation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches = append(s.batches, len(ps))
	s.events += len(ps)
	return nil
}

func (s *memSink) written() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.events
}

// TestConsumerWritesInBatches: a backlog is written many events at a
// time, never more than MaxBatch.
func TestConsumerWritesInBatches(t *testing.T) {
	e := startBroker(t)
	cfg := newConfig(t, e)
	p := newProducer(t, cfg)
	ps := makeParticipations(t, 23, 2*mq.MaxBatch+5)
	var wg sync.WaitGroup
	for part := range 8 {
		wg.Go(func() {
			for i := part; i < len(ps); i += 8 {
				if err := p.Record(context.Background(), ps[i]); err != nil {
					t.Errorf("record: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	sink := &memSink{}
	startSinkConsumer(t, cfg, sink, nil)
	waitUntil(t, "every event written", func() bool { return sink.written() >= len(ps) })
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for _, n := range sink.batches {
		if n > mq.MaxBatch {
			t.Fatalf("a batch of %d events, more than %d", n, mq.MaxBatch)
		}
	}
	// How full a batch gets depends on how fast the events come; a backlog
	// read at once makes batches of many.
	if len(sink.batches) > len(ps)/10 || sink.events != len(ps) {
		t.Fatalf("%d batches for a backlog of %d events: want batches of many, every event once", len(sink.batches), len(ps))
	}
}

// TestConsumerWritesALoneEvent: a batch that does not fill is written
// once its first event has waited FlushEvery; one event alone too.
func TestConsumerWritesALoneEvent(t *testing.T) {
	e := startBroker(t)
	cfg := newConfig(t, e)
	sink := &memSink{}
	startSinkConsumer(t, cfg, sink, nil)
	recordAll(t, newProducer(t, cfg), makeParticipations(t, 29, 1))
	waitUntil(t, "the event written", func() bool { return sink.written() == 1 })
}

// TestRebalanceIsNotAnError: a second consumer joining the group ends the
// first one's session; the first joins again at once and says nothing of
// it.
func TestRebalanceIsNotAnError(t *testing.T) {
	e := startBroker(t)
	cfg := newConfig(t, e)
	logs := &testenv.Buffer{}
	sink := &memSink{}
	first, err := mq.NewConsumer(cfg, sink, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first.Start(ctx)
	defer first.Close()
	p := newProducer(t, cfg)
	recordAll(t, p, makeParticipations(t, 31, 1))
	waitUntil(t, "the first consumer wrote an event", func() bool { return sink.written() == 1 })
	second := &memSink{}
	startSinkConsumer(t, cfg, second, nil)
	// Events on every partition until the second consumer has some: the
	// group has then been rebalanced.
	id := int64(40)
	waitUntil(t, "the second consumer wrote an event", func() bool {
		recordAll(t, p, makeParticipations(t, id, 1))
		id++
		return second.written() > 0
	})
	if strings.Contains(logs.String(), "kafka consume; retrying") {
		t.Fatalf("the rebalance was logged as a failure:\n%s", logs)
	}
}

// TestWaitCaughtUp: the wait returns at once on an activity with no event,
// waits while the consumer has not written the activity's events, and
// returns once it has.
func TestWaitCaughtUp(t *testing.T) {
	e := startBroker(t)
	cfg := newConfig(t, e)
	o, err := mq.NewOffsets(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	ctx := context.Background()
	if err := o.WaitCaughtUp(ctx, 51); err != nil {
		t.Fatalf("no event yet: %v", err)
	}
	recordAll(t, newProducer(t, cfg), makeParticipations(t, 51, 3))
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := o.WaitCaughtUp(short, 51); err == nil {
		t.Fatal("caught up before any consumer ran")
	}
	sink := &memSink{}
	startSinkConsumer(t, cfg, sink, nil)
	long, cancel := context.WithTimeout(ctx, waitLimit)
	defer cancel()
	if err := o.WaitCaughtUp(long, 51); err != nil {
		t.Fatalf("after the consumer: %v", err)
	}
	if n := sink.written(); n != 3 {
		t.Fatalf("caught up with %d of 3 events written", n)
	}
}
