package stock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"seckill/activity"
	"seckill/stock"
)

// TestDefaultLease: a store made without a lease gives claims the default
// one, 15 s as the README says, and their slot locks last as long.
func TestDefaultLease(t *testing.T) {
	if stock.DefaultLease != 15*time.Second {
		t.Fatalf("default lease %v, documented as 15s", stock.DefaultLease)
	}
	ctx := context.Background()
	_, rdb, _ := privateStore(t)
	s := stock.New(rdb, stock.Options{})
	t.Cleanup(s.Stop)
	a := &activity.Activity{ID: 1, Stock: 5, PerUserLimit: 1, State: activity.StateOpen,
		BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour)}
	if err := s.Preheat(ctx, a); err != nil {
		t.Fatal(err)
	}
	c := claim(t, s, a.ID, "ann")
	ttl := rdb.PTTL(ctx, s.KeysOf(a.ID).Lock(c.Slot)).Val()
	if ttl <= stock.DefaultLease-5*time.Second || ttl > stock.DefaultLease {
		t.Fatalf("slot lock TTL %v, want the default lease %v", ttl, stock.DefaultLease)
	}
}

// TestUserBuckets: one bucket per 64 slots, rounded up, and at least one.
func TestUserBuckets(t *testing.T) {
	for _, c := range []struct{ stock, want int64 }{
		{1, 1}, {64, 1}, {65, 2}, {128, 2}, {129, 3}, {10_000_000, 156_250},
	} {
		if got := stock.UserBuckets(c.stock); got != c.want {
			t.Errorf("UserBuckets(%d) = %d, want %d", c.stock, got, c.want)
		}
	}
}

// TestNowIsTheRedisClock: Now reads the clock of the activity's Redis
// node, to the microsecond.
func TestNowIsTheRedisClock(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 1, 5, 1)
	before := s.Client().Time(ctx).Val()
	now, err := s.Now(ctx, a.ID)
	after := s.Client().Time(ctx).Val()
	if err != nil || now.Before(before) || now.After(after) || now.Location() != time.UTC {
		t.Fatalf("Now %v (%v), want between the Redis times %v and %v, in UTC", now, err, before, after)
	}
}

// TestRebuildOfManyBuckets: the clear of a rebuild whose state has more
// user buckets than one clear call deletes goes on page after page, and
// the rebuilt state sells.
func TestRebuildOfManyBuckets(t *testing.T) {
	s, a := newStore(t, 1, 200_000, 1)
	a.Epoch = 2
	valid := []activity.Participation{{ActivityID: a.ID, Slot: 1, UserID: "u", ClaimID: "c", Epoch: 1, IssuedAt: time.Now()}}
	if err := rebuild(t, s, a, valid); err != nil {
		t.Fatalf("rebuild of %d buckets: %v", stock.UserBuckets(a.Stock), err)
	}
	if c := counters(t, s, a.ID); c.Claimed != 1 || c.Issued != 1 {
		t.Fatalf("counters after the rebuild %+v, want the one token", c)
	}
	if c := claim(t, s, a.ID, "ann"); c.Slot != 2 {
		t.Fatalf("claim after the rebuild got slot %d, want 2", c.Slot)
	}
}

// restartAfterFirstClear restarts Redis once the first call of the clear
// script of an activity has been answered.
type restartAfterFirstClear struct {
	leases  string
	restart func()
	done    bool
}

func (h *restartAfterFirstClear) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *restartAfterFirstClear) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if args := cmd.Args(); err == nil && !h.done && len(args) > 3 && args[3] == h.leases && (args[0] == "evalsha" || args[0] == "eval") {
			h.done = true
			h.restart()
		}
		return err
	}
}

func (h *restartAfterFirstClear) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestRebuildWhoseRedisRestartsMidClear: Redis restarts, from an AOF that
// kept everything, between two calls of a rebuild's clear. The state lock
// came back with the rest, but the master's history is another: the
// rebuild must stop and write nothing, for another one on the new history
// to start afresh.
func TestRebuildWhoseRedisRestartsMidClear(t *testing.T) {
	ctx := context.Background()
	srv, rdb, s := privateStore(t, "--appendonly", "yes", "--appendfsync", "always")
	a := &activity.Activity{ID: 1, Stock: 200_000, PerUserLimit: 1, State: activity.StateOpen, Epoch: 2,
		BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour)}
	valid := []activity.Participation{{ActivityID: a.ID, Slot: 1, UserID: "u", ClaimID: "c", Epoch: 1, IssuedAt: time.Now()}}
	if err := s.Preheat(ctx, a); err != nil { // its 3,125 buckets take two clear calls
		t.Fatal(err)
	}
	l, err := s.Lock(ctx, a.ID, "state", time.Minute)
	if err != nil || l == nil {
		t.Fatalf("lock: %v %v", l, err)
	}
	rdb.AddHook(&restartAfterFirstClear{leases: s.KeysOf(a.ID).Leases, restart: srv.Restart})
	if err := s.Rebuild(ctx, a, pagesOf(valid), l); !errors.Is(err, activity.ErrUnavailable) {
		t.Fatalf("rebuild across a restart: %v, want unavailable", err)
	}
	if n := rdb.Exists(ctx, s.KeysOf(a.ID).Used).Val(); n != 0 {
		t.Fatal("the rebuild wrote the used counter after the restart")
	}
	if _, ok, err := s.Counters(ctx, a.ID); ok || err != nil {
		t.Fatalf("state live after the rebuild was cut (%v)", err)
	}
}

// TestPreheatWhoseRedisRestartsAfterTheClear: a preheat finds a state that
// is not live (back from a snapshot), clears it, and Redis restarts from
// the same snapshot before the preheat writes: the state is not live again,
// and the preheat fails instead of answering an open that did not happen.
func TestPreheatWhoseRedisRestartsAfterTheClear(t *testing.T) {
	ctx := context.Background()
	srv, rdb, s, a := privateSale(t)
	if err := rdb.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	rdb.AddHook(&restartAfterFirstClear{leases: s.KeysOf(a.ID).Leases, restart: srv.Restart})
	if err := s.Preheat(ctx, a); !errors.Is(err, activity.ErrUnavailable) {
		t.Fatalf("preheat across a restart to a stale state: %v, want unavailable", err)
	}
	if _, ok, err := s.Counters(ctx, a.ID); ok || err != nil {
		t.Fatalf("state live after the preheat failed (%v)", err)
	}
}
