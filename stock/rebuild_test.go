package stock_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"seckill/activity"
	"seckill/internal/testenv"
	"seckill/stock"
)

// TestRebuildReplaysSettledTokens: a rebuild replays three valid records,
// two of one user: the counters count them, the users are at their limit
// with the tokens counted as settled, a retry with a replayed idempotency
// key is told to read its answer from MySQL, and new claims take the other
// slots (the counter points at a replayed one, so the first comes from the
// bitmap).
func TestRebuildReplaysSettledTokens(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 1, 200, 2)
	claim(t, s, a.ID, "ann") // in flight, forgotten by the rebuild
	a.Epoch = 2
	valid := []activity.Participation{
		{ActivityID: a.ID, Slot: 2, UserID: "ann", ClaimID: "c2", Epoch: 1, IdempotencyKey: "ka"},
		{ActivityID: a.ID, Slot: 3, UserID: "ann", ClaimID: "c3", Epoch: 1},
		{ActivityID: a.ID, Slot: 4, UserID: "bob", ClaimID: "c4", Epoch: 1, IdempotencyKey: "kb"},
	}
	if err := rebuild(t, s, a, valid); err != nil {
		t.Fatal(err)
	}
	if got := counters(t, s, a.ID); got != (activity.Counters{Claimed: 3, Issued: 3}) {
		t.Fatalf("counters %+v, want 3 claimed and issued", got)
	}
	var le *activity.LimitError
	again := activity.Claim{ActivityID: a.ID, UserID: "ann", ClaimID: "again"}
	if err := s.Claim(ctx, &again); !errors.As(err, &le) || le.Settled != 2 {
		t.Fatalf("ann's claim: %v %+v, want the limit with 2 settled", err, le)
	}
	for _, r := range []struct{ user, key string }{{"ann", "ka"}, {"bob", "kb"}} {
		retry := activity.Claim{ActivityID: a.ID, UserID: r.user, ClaimID: "retry-" + r.user, IdempotencyKey: r.key}
		var replay *activity.Replay
		if err := s.Claim(ctx, &retry); !errors.As(err, &replay) || !replay.Settled {
			t.Fatalf("%s's retry with %s: %v, want a replay read from MySQL", r.user, r.key, err)
		}
	}
	for _, want := range []int64{1, 5} {
		if c := claim(t, s, a.ID, fmt.Sprintf("new-%d", want)); c.Slot != want || c.Epoch != 2 {
			t.Fatalf("new claim got slot %d in epoch %d, want slot %d in epoch 2", c.Slot, c.Epoch, want)
		}
	}
}

// TestRebuildOfAClosedActivity: a rebuilt state of a closed activity is
// live, and refuses claims.
func TestRebuildOfAClosedActivity(t *testing.T) {
	s, a := newStore(t, 1, 5, 1)
	a.Epoch, a.State = 2, activity.StateClosed
	if err := rebuild(t, s, a, nil); err != nil {
		t.Fatal(err)
	}
	counters(t, s, a.ID)
	c := activity.Claim{ActivityID: a.ID, UserID: "ann", ClaimID: "c"}
	if err := s.Claim(context.Background(), &c); !errors.Is(err, activity.ErrNotOpen) {
		t.Fatalf("claim on the rebuilt closed activity: %v, want ErrNotOpen", err)
	}
}

// TestRebuildRenewsItsStateLock: every step of a rebuild renews the state
// lock to its TTL, so a long rebuild keeps it. Before each page is asked
// for, the lock is found renewed, and cut short again.
func TestRebuildRenewsItsStateLock(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 1, 5, 1)
	rdb := s.Client()
	k := s.KeysOf(a.ID)
	l, err := s.Lock(ctx, a.ID, "state", time.Minute)
	if err != nil || l == nil {
		t.Fatalf("state lock: %v %v", l, err)
	}
	defer l.Release()
	rdb.PExpire(ctx, k.State, 5*time.Second)
	pages := [][]activity.Participation{{{ActivityID: a.ID, Slot: 1, UserID: "ann", ClaimID: "c1", Epoch: 1}}, nil}
	step := 0
	next := func(context.Context) ([]activity.Participation, error) {
		if ttl := rdb.PTTL(ctx, k.State).Val(); ttl < 30*time.Second {
			t.Errorf("before page %d the state lock has %v left, want it renewed to a minute", step+1, ttl)
		}
		rdb.PExpire(ctx, k.State, 5*time.Second)
		page := pages[step]
		step++
		return page, nil
	}
	a.Epoch = 2
	if err := s.Rebuild(ctx, a, next, l); err != nil {
		t.Fatal(err)
	}
}

// TestRebuildWithoutItsLockLeavesTheLiveState: a rebuilder whose state lock
// was taken by another changes nothing: the live state sells on.
func TestRebuildWithoutItsLockLeavesTheLiveState(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 1, 5, 1)
	c := claim(t, s, a.ID, "ann")
	l, err := s.Lock(ctx, a.ID, "state", time.Minute)
	if err != nil || l == nil {
		t.Fatalf("state lock: %v %v", l, err)
	}
	s.Client().Set(ctx, s.KeysOf(a.ID).State, "another rebuilder", time.Minute)
	a.Epoch = 2
	if err := s.Rebuild(ctx, a, pagesOf(nil), l); !errors.Is(err, activity.ErrUnavailable) {
		t.Fatalf("rebuild without its lock: %v, want unavailable", err)
	}
	if got := counters(t, s, a.ID); got != (activity.Counters{Claimed: 1, InFlight: 1}) {
		t.Fatalf("counters %+v after the fenced rebuild, want the live state's", got)
	}
	if err := s.Confirm(ctx, c, time.Now()); err != nil {
		t.Fatalf("confirm after the fenced rebuild: %v", err)
	}
}

// TestRebuildCutShort: a rebuild loses its state lock to another rebuilder,
// or its Redis restarts from its append-only file (the lock and the
// replayed pages come back, on a new master history), either before a page
// or before the meta hash is written. Nothing more is written, nothing of
// it becomes live, and a drop afterwards deletes every key it wrote, the
// user buckets of its pages too.
func TestRebuildCutShort(t *testing.T) {
	ctx := context.Background()
	srv, rdb, s := privateStore(t, "--appendonly", "yes", "--appendfsync", "always")
	takeLock := func(k stock.Keys) { rdb.Set(ctx, k.State, "another rebuilder", time.Minute) }
	restart := func(stock.Keys) { srv.Restart() }
	for i, tc := range []struct {
		name      string
		lose      func(stock.Keys)
		beforeEnd bool // lose before the meta hash is written, else before the second page
	}{
		{"LockTakenBeforeAPage", takeLock, false},
		{"LockTakenBeforeTheEnd", takeLock, true},
		{"RestartBeforeAPage", restart, false},
		{"RestartBeforeTheEnd", restart, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &activity.Activity{ID: int64(i + 1), Stock: 200, PerUserLimit: 1, State: activity.StateOpen,
				BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour)}
			if err := s.Preheat(ctx, a); err != nil {
				t.Fatal(err)
			}
			k := s.KeysOf(a.ID)
			pages := [][]activity.Participation{
				{{ActivityID: a.ID, Slot: 1, UserID: "ann", ClaimID: "c1", Epoch: 1, IdempotencyKey: "k1"}},
				{{ActivityID: a.ID, Slot: 2, UserID: "bob", ClaimID: "c2", Epoch: 1, IdempotencyKey: "k2"}},
				nil,
			}
			if tc.beforeEnd {
				pages = append(pages[:1], nil)
			}
			step := 0
			next := func(context.Context) ([]activity.Participation, error) {
				if step == 1 {
					tc.lose(k)
				}
				page := pages[step]
				step++
				return page, nil
			}
			l, err := s.Lock(ctx, a.ID, "state", time.Minute)
			if err != nil || l == nil {
				t.Fatalf("state lock: %v %v", l, err)
			}
			a.Epoch = 2
			if err := s.Rebuild(ctx, a, next, l); !errors.Is(err, activity.ErrUnavailable) {
				t.Fatalf("rebuild cut short: %v, want unavailable", err)
			}
			if _, ok, err := s.Counters(ctx, a.ID); ok || err != nil {
				t.Fatalf("the state is live after the rebuild was cut short (%v)", err)
			}
			if used := rdb.Get(ctx, k.Used).Val(); used != "1" || rdb.GetBit(ctx, k.Slots, 2).Val() != 0 {
				t.Fatalf("used %q, bit 2 %d: want the first page alone replayed", used, rdb.GetBit(ctx, k.Slots, 2).Val())
			}

			rdb.Del(ctx, k.State)
			if err := s.Drop(ctx, a.ID); err != nil {
				t.Fatal(err)
			}
			if left := testenv.Keys(t, rdb, strings.TrimSuffix(k.Meta, "meta")+"*"); len(left) != 0 {
				t.Fatalf("keys left after a drop: %v", left)
			}
		})
	}
}

// TestPreheatAgainKeepsTheSale: a second preheat, as an instance that
// starts does, keeps what was sold: the counters, the claim sequence, and
// the epoch of a rebuilt state even when the activity it was given says an
// earlier one (read before the rebuild).
func TestPreheatAgainKeepsTheSale(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 1, 5, 1)
	done := claim(t, s, a.ID, "ann")
	if err := s.Confirm(ctx, done, time.Now()); err != nil {
		t.Fatal(err)
	}
	claim(t, s, a.ID, "bob")
	if err := s.Preheat(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got := counters(t, s, a.ID); got != (activity.Counters{Claimed: 2, Issued: 1, InFlight: 1}) {
		t.Fatalf("counters %+v after a second preheat, want them kept", got)
	}
	if c := claim(t, s, a.ID, "cat"); c.Seq != 3 {
		t.Fatalf("claim after a second preheat has seq %d, want 3", c.Seq)
	}

	before := *a
	a.Epoch = 2
	if err := rebuild(t, s, a, []activity.Participation{settledAs(done)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Preheat(ctx, &before); err != nil {
		t.Fatal(err)
	}
	if c := claim(t, s, a.ID, "dan"); c.Epoch != 2 {
		t.Fatalf("claim after a preheat of epoch 1 is in epoch %d, want 2", c.Epoch)
	}
}

// TestCloseWithoutAState: closing an activity Redis holds no state of
// writes nothing.
func TestCloseWithoutAState(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, 1, 5, 1)
	if err := s.Close(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if n := s.Client().Exists(ctx, s.KeysOf(2).Meta).Val(); n != 0 {
		t.Fatal("Close wrote a meta hash for an activity without a state")
	}
}
