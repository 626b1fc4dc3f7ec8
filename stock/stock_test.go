package stock_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"seckill/activity"
	"seckill/internal/testenv"
	"seckill/stock"
)

// newStore returns a Store on the test Redis and a preheated activity.
func newStore(t *testing.T, id, stockN, perUser int64) (*stock.Store, *activity.Activity) {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	s := stock.New(rdb, stock.Options{Prefix: prefix, Lease: time.Minute})
	t.Cleanup(s.Stop)
	a := &activity.Activity{ID: id, Stock: stockN, PerUserLimit: perUser, State: activity.StateOpen,
		BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour)}
	if err := s.Preheat(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	return s, a
}

var seq int

// rebuild rebuilds a's state under its state lock.
func rebuild(t *testing.T, s *stock.Store, a *activity.Activity, valid []activity.Participation) error {
	t.Helper()
	l, err := s.Lock(context.Background(), a.ID, "state", time.Minute)
	if err != nil || l == nil {
		t.Fatalf("state lock: %v %v", l, err)
	}
	defer l.Release()
	return s.Rebuild(context.Background(), a, pagesOf(valid), l)
}

// pagesOf hands valid over in one page.
func pagesOf(valid []activity.Participation) func(context.Context) ([]activity.Participation, error) {
	return func(context.Context) ([]activity.Participation, error) {
		page := valid
		valid = nil
		return page, nil
	}
}

func claim(t *testing.T, s *stock.Store, id int64, user string) activity.Claim {
	t.Helper()
	seq++
	c := activity.Claim{ActivityID: id, UserID: user, ClaimID: "claim" + string(rune('A'+seq%26)) + user}
	if err := s.Claim(context.Background(), &c); err != nil {
		t.Fatalf("claim for %s: %v", user, err)
	}
	return c
}

func counters(t *testing.T, s *stock.Store, id int64) activity.Counters {
	t.Helper()
	c, ok, err := s.Counters(context.Background(), id)
	if err != nil || !ok {
		t.Fatalf("counters: %v %v", ok, err)
	}
	return c
}

func lockKeys(t *testing.T, s *stock.Store, id int64) []string {
	t.Helper()
	k := s.KeysOf(id)
	keys, err := s.Client().Keys(context.Background(), k.LockPrefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestClaimConfirm(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 42, 2, 1)
	c1 := claim(t, s, a.ID, "alice")
	c2 := claim(t, s, a.ID, "bob")
	if c1.Slot != 1 || c2.Slot != 2 {
		t.Fatalf("slots %d %d, want 1 2", c1.Slot, c2.Slot)
	}
	if got := counters(t, s, a.ID); got != (activity.Counters{Claimed: 2, InFlight: 2}) {
		t.Fatalf("counters %+v", got)
	}
	if l := lockKeys(t, s, a.ID); len(l) != 2 || !strings.HasSuffix(l[0], ":lock:42_1") && !strings.HasSuffix(l[0], ":lock:42_2") {
		t.Fatalf("locks %v, want the keys of 42_1 and 42_2", l)
	}
	t.Run("AllInFlight", func(t *testing.T) {
		c := activity.Claim{ActivityID: a.ID, UserID: "carol", ClaimID: "x"}
		if err := s.Claim(ctx, &c); !errors.Is(err, activity.ErrSlotsInFlight) {
			t.Fatalf("got %v, want ErrSlotsInFlight: both slots are only in flight", err)
		}
		if got := counters(t, s, a.ID).Claimed; got != 2 {
			t.Fatalf("claimed %d after sold out, want 2", got)
		}
	})
	t.Run("LimitReached", func(t *testing.T) {
		c := activity.Claim{ActivityID: a.ID, UserID: "alice", ClaimID: "y"}
		if err := s.Claim(ctx, &c); !errors.Is(err, activity.ErrLimitReached) {
			t.Fatalf("got %v, want ErrLimitReached", err)
		}
	})
	t.Run("Confirmed", func(t *testing.T) {
		for _, c := range []activity.Claim{c1, c2} {
			if err := s.Confirm(ctx, c, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		if got := counters(t, s, a.ID); got != (activity.Counters{Claimed: 2, Issued: 2}) {
			t.Fatalf("counters %+v", got)
		}
		if l := lockKeys(t, s, a.ID); len(l) != 0 {
			t.Fatalf("locks left: %v", l)
		}
	})
	t.Run("ConfirmTwiceLosesLease", func(t *testing.T) {
		if err := s.Confirm(ctx, c1, time.Now()); !errors.Is(err, activity.ErrLeaseLost) {
			t.Fatalf("got %v, want ErrLeaseLost", err)
		}
	})
	t.Run("ReleaseOfIssuedDoesNothing", func(t *testing.T) {
		if err := s.Release(ctx, c1); err != nil {
			t.Fatal(err)
		}
		if got := counters(t, s, a.ID); got != (activity.Counters{Claimed: 2, Issued: 2}) {
			t.Fatalf("counters %+v", got)
		}
	})
}

func TestRelease(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 7, 1, 1)
	c := claim(t, s, a.ID, "alice")
	for i := 0; i < 2; i++ { // the second release must change nothing
		if err := s.Release(ctx, c); err != nil {
			t.Fatal(err)
		}
		if got := counters(t, s, a.ID); got != (activity.Counters{}) {
			t.Fatalf("release %d: counters %+v, want zero", i+1, got)
		}
	}
	if l := lockKeys(t, s, a.ID); len(l) != 0 {
		t.Fatalf("locks left: %v", l)
	}
	if err := s.Confirm(ctx, c, time.Now()); !errors.Is(err, activity.ErrLeaseLost) {
		t.Fatalf("confirm after release: %v, want ErrLeaseLost", err)
	}
	// The slot and the user's count came back: alice can take it again.
	c2 := claim(t, s, a.ID, "alice")
	if c2.Slot != 1 {
		t.Fatalf("slot %d, want 1", c2.Slot)
	}
}

// TestCollision forces the case the original design strands stock in: a
// number comes back by DECR while a later claim still holds it.
func TestCollision(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// prepare runs after A holds 1 and B holds 2, and A was released.
		prepare func(t *testing.T, s *stock.Store, b activity.Claim)
	}{
		{"HeldByClaimInFlight", func(*testing.T, *stock.Store, activity.Claim) {}},
		{"HeldByIssuedSlot", func(t *testing.T, s *stock.Store, b activity.Claim) {
			if err := s.Confirm(ctx, b, time.Now()); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, act := newStore(t, 5, 3, 1)
			a := claim(t, s, act.ID, "a")
			b := claim(t, s, act.ID, "b")
			if err := s.Release(ctx, a); err != nil {
				t.Fatal(err)
			}
			tc.prepare(t, s, b)
			// INCR gives 2 again, which b holds: the claim must get 1.
			c := claim(t, s, act.ID, "c")
			if c.Slot != 1 {
				t.Fatalf("colliding claim got slot %d, want 1", c.Slot)
			}
			d := claim(t, s, act.ID, "d")
			if d.Slot != 3 {
				t.Fatalf("next claim got slot %d, want 3", d.Slot)
			}
			e := activity.Claim{ActivityID: act.ID, UserID: "e", ClaimID: "e"}
			if err := s.Claim(ctx, &e); !errors.Is(err, activity.ErrSlotsInFlight) {
				t.Fatalf("fourth claim: %v, want ErrSlotsInFlight (every slot taken, some in flight)", err)
			}
			for _, x := range []activity.Claim{b, c, d} {
				if err := s.Confirm(ctx, x, time.Now()); err != nil && !(tc.name == "HeldByIssuedSlot" && x.ClaimID == b.ClaimID) {
					t.Fatalf("confirm slot %d: %v", x.Slot, err)
				}
			}
			if got := counters(t, s, act.ID); got != (activity.Counters{Claimed: 3, Issued: 3}) {
				t.Fatalf("counters %+v, want 3 claimed and issued", got)
			}
			if l := lockKeys(t, s, act.ID); len(l) != 0 {
				t.Fatalf("locks left: %v", l)
			}
		})
	}
}

func TestExpiredLock(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 9, 1, 1)
	c := claim(t, s, a.ID, "alice")
	// The lock expires (its process stalled past the lease).
	s.Client().Del(ctx, s.KeysOf(a.ID).Lock(c.Slot))
	if err := s.Confirm(ctx, c, time.Now()); !errors.Is(err, activity.ErrLeaseLost) {
		t.Fatalf("confirm without lock: %v, want ErrLeaseLost", err)
	}
	if err := s.Release(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got := counters(t, s, a.ID); got != (activity.Counters{}) {
		t.Fatalf("counters %+v, want zero", got)
	}
}

func TestClaimRefused(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	s := stock.New(rdb, stock.Options{Prefix: prefix})
	now := time.Now()
	for _, tc := range []struct {
		name       string
		begin, end time.Time
		closed     bool
		preheat    bool
		want       error
	}{
		{"NoState", now.Add(-time.Hour), now.Add(time.Hour), false, false, activity.ErrNoState},
		{"BeforeBegin", now.Add(time.Hour), now.Add(2 * time.Hour), false, true, activity.ErrNotOpen},
		{"AfterEnd", now.Add(-2 * time.Hour), now.Add(-time.Hour), false, true, activity.ErrNotOpen},
		{"Closed", now.Add(-time.Hour), now.Add(time.Hour), true, true, activity.ErrNotOpen},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &activity.Activity{ID: 100 + int64(len(tc.name)), Stock: 5, PerUserLimit: 1, BeginAt: tc.begin, EndAt: tc.end}
			if tc.preheat {
				if err := s.Preheat(ctx, a); err != nil {
					t.Fatal(err)
				}
			}
			if tc.closed {
				if err := s.Close(ctx, a.ID); err != nil {
					t.Fatal(err)
				}
			}
			c := activity.Claim{ActivityID: a.ID, UserID: "u", ClaimID: "c"}
			if err := s.Claim(ctx, &c); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if c, ok, _ := s.Counters(ctx, a.ID); ok && c.Claimed != 0 {
				t.Fatalf("claimed %d, want nothing taken", c.Claimed)
			}
		})
	}
}

func TestPreheatKeepsCounters(t *testing.T) {
	s, a := newStore(t, 3, 5, 1)
	claim(t, s, a.ID, "alice")
	if err := s.Preheat(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if got := counters(t, s, a.ID).Claimed; got != 1 {
		t.Fatalf("claimed %d after a second preheat, want 1", got)
	}
}

func TestKeysShareHashTag(t *testing.T) {
	s := stock.New(nil, stock.Options{})
	k := s.KeysOf(42)
	keys := append([]string{k.Meta, k.Used, k.UserKey("u", 3), k.IdemKey("u", 3), k.Buckets, k.Issued, k.Slots,
		k.Leases, k.Confirmed, k.Held, k.State, k.Lock(17)}, k.Legacy...)
	for _, key := range keys {
		if !strings.HasPrefix(key, "seckill:{42}:") {
			t.Errorf("key %q lacks the hash tag {42}", key)
		}
	}
	if got := k.Lock(17); got != "seckill:{42}:lock:42_17" {
		t.Errorf("lock key %q, want seckill:{42}:lock:42_17", got)
	}
}

func TestRedisDown(t *testing.T) {
	s := stock.New(testenv.DeadRedis(t), stock.Options{})
	c := activity.Claim{ActivityID: 1, UserID: "u", ClaimID: "c"}
	if err := s.Claim(context.Background(), &c); !errors.Is(err, activity.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
}

// TestRebuildFencesEarlierEpochs rebuilds an activity's state under a new
// epoch while a claim of the old one is in flight: the stale claim can
// neither confirm nor release against the rebuilt counters, and its record
// settles void.
func TestRebuildFencesEarlierEpochs(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 11, 5, 1)
	stale := claim(t, s, a.ID, "stale")
	kept := claim(t, s, a.ID, "kept")
	if err := s.Confirm(ctx, kept, time.Now()); err != nil {
		t.Fatal(err)
	}
	if stale.Epoch != 1 || kept.Epoch != 1 {
		t.Fatalf("epochs %d %d, want 1", stale.Epoch, kept.Epoch)
	}

	a.Epoch = 2
	valid := []activity.Participation{{ActivityID: a.ID, Slot: kept.Slot, UserID: "kept", ClaimID: kept.ClaimID,
		Epoch: 1, IssuedAt: time.Now()}}
	if err := rebuild(t, s, a, valid); err != nil {
		t.Fatal(err)
	}
	if got := counters(t, s, a.ID); got != (activity.Counters{Claimed: 1, Issued: 1}) {
		t.Fatalf("rebuilt counters %+v, want 1 claimed and issued", got)
	}
	if err := s.Confirm(ctx, stale, time.Now()); !errors.Is(err, activity.ErrLeaseLost) {
		t.Fatalf("stale confirm: %v, want ErrLeaseLost", err)
	}
	if err := s.Release(ctx, stale); err != nil {
		t.Fatal(err)
	}
	if got := counters(t, s, a.ID); got != (activity.Counters{Claimed: 1, Issued: 1}) {
		t.Fatalf("counters after a stale release %+v, want them untouched", got)
	}
	out, err := s.Settle(ctx, a.ID, []activity.Participation{{Slot: stale.Slot, ClaimID: stale.ClaimID, UserID: "stale", Epoch: 1}})
	if err != nil || out[0] != activity.OutcomeGivenBack {
		t.Fatalf("settle of the stale claim: %v %v, want given back", out, err)
	}
	// The rebuilt state sells on: the kept user is at the limit, holding
	// one token (its record is valid in MySQL, where the service reads it),
	// and a new claim avoids the issued slot.
	var le *activity.LimitError
	again := activity.Claim{ActivityID: a.ID, UserID: "kept", ClaimID: "again"}
	if err := s.Claim(ctx, &again); !errors.As(err, &le) || le.Settled != 1 || len(le.Held) != 0 {
		t.Fatalf("claim by the kept user: %v, want limit reached holding 1 token, none listed by Redis", err)
	}
	next := claim(t, s, a.ID, "next")
	if next.Epoch != 2 || next.Slot == kept.Slot {
		t.Fatalf("next claim: slot %d epoch %d, want a slot other than %d in epoch 2", next.Slot, next.Epoch, kept.Slot)
	}
}

// TestClaimAroundAStaleLock: a lock that the used counter does not count (a
// claim of a state that was partly lost) makes [1, n] full; the claim takes
// a number above n instead of failing.
func TestClaimAroundAStaleLock(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 12, 3, 1)
	c := claim(t, s, a.ID, "ghost")
	k := s.KeysOf(a.ID)
	s.Client().Decr(ctx, k.Used)
	s.Client().Del(ctx, k.Leases)
	next := claim(t, s, a.ID, "next")
	if next.Slot == c.Slot || next.Slot < 1 || next.Slot > 3 {
		t.Fatalf("claim around the stale lock of slot %d got slot %d", c.Slot, next.Slot)
	}
}

// TestPreheatClearsAnotherActivitysState: a database dropped and created
// again hands out the same IDs while Redis kept the old keys; opening the new
// activity must not inherit the old sale.
func TestPreheatClearsAnotherActivitysState(t *testing.T) {
	ctx := context.Background()
	s, old := newStore(t, 21, 5, 1)
	claim(t, s, old.ID, "old-user")
	fresh := *old
	fresh.CreatedAt = old.CreatedAt.Add(time.Hour)
	if err := s.Preheat(ctx, &fresh); err != nil {
		t.Fatal(err)
	}
	if got := counters(t, s, fresh.ID); got != (activity.Counters{}) {
		t.Fatalf("counters of the new activity %+v, want zero", got)
	}
	if c := claim(t, s, fresh.ID, "old-user"); c.Slot != 1 {
		t.Fatalf("first claim of the new activity got slot %d, want 1", c.Slot)
	}
}

// TestListed: Redis lists the activities preheated in it, skips what is not
// an activity ID, and forgets those unlisted.
func TestListed(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 41, 5, 1)
	b := *a
	b.ID = 42
	if err := s.Preheat(ctx, &b); err != nil {
		t.Fatal(err)
	}
	listed := func() []int64 {
		t.Helper()
		ids, err := s.Listed(ctx)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(ids)
		return ids
	}
	if got := listed(); !slices.Equal(got, []int64{41, 42}) {
		t.Fatalf("listed %v, want [41 42]", got)
	}
	if err := s.Unlist(ctx, nil); err != nil {
		t.Fatalf("unlist of nothing: %v", err)
	}
	if err := s.Unlist(ctx, []int64{41}); err != nil {
		t.Fatal(err)
	}
	if got := listed(); !slices.Equal(got, []int64{42}) {
		t.Fatalf("listed after unlisting 41: %v, want [42]", got)
	}
	dead := stock.New(testenv.DeadRedis(t), stock.Options{})
	if _, err := dead.Listed(ctx); !errors.Is(err, activity.ErrUnavailable) {
		t.Fatalf("listed with Redis down: %v, want ErrUnavailable", err)
	}
	if err := dead.Unlist(ctx, []int64{42}); !errors.Is(err, activity.ErrUnavailable) {
		t.Fatalf("unlist with Redis down: %v, want ErrUnavailable", err)
	}
}

func TestStopped(t *testing.T) {
	s, a := newStore(t, 31, 5, 1)
	s.Stop()
	c := activity.Claim{ActivityID: a.ID, UserID: "late", ClaimID: "late"}
	if err := s.Claim(context.Background(), &c); !errors.Is(err, activity.ErrUnavailable) {
		t.Fatalf("claim on a stopped store: %v, want ErrUnavailable", err)
	}
}

// TestSetStock: a stock change is refused below the slots claimed (in
// flight included), counts at once for the claims, and never writes into a
// state that is not live.
func TestSetStock(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	s := stock.New(rdb, stock.Options{Prefix: prefix, Lease: time.Minute})
	t.Cleanup(s.Stop)
	a := &activity.Activity{ID: 1, Stock: 3, PerUserLimit: 1, State: activity.StateOpen,
		BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour)}
	if err := s.Preheat(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStock(ctx, a.ID+1000, 5); !errors.Is(err, activity.ErrNoState) {
		t.Fatalf("SetStock of an activity without state: %v, want ErrNoState", err)
	}
	var claims []activity.Claim
	for i := range 3 {
		c := activity.Claim{ActivityID: a.ID, UserID: fmt.Sprintf("u%d", i), ClaimID: fmt.Sprintf("c%d", i)}
		if err := s.Claim(ctx, &c); err != nil {
			t.Fatal(err)
		}
		claims = append(claims, c)
	}
	if err := s.Confirm(ctx, claims[0], time.Now()); err != nil {
		t.Fatal(err)
	}
	var conflict *activity.StockConflictError
	if err := s.SetStock(ctx, a.ID, 2); !errors.As(err, &conflict) || conflict.Claimed != 3 {
		t.Fatalf("lowering below 1 issued and 2 in flight: %v, want a conflict with 3 claimed", err)
	}
	if err := s.SetStock(ctx, a.ID, 4); err != nil {
		t.Fatal(err)
	}
	c := activity.Claim{ActivityID: a.ID, UserID: "u3", ClaimID: "c3"}
	if err := s.Claim(ctx, &c); err != nil || c.Slot != 4 {
		t.Fatalf("the claim after a raise to 4: slot %d, %v; want slot 4", c.Slot, err)
	}
	if err := s.Claim(ctx, &activity.Claim{ActivityID: a.ID, UserID: "u4", ClaimID: "c4"}); !errors.Is(err, activity.ErrSlotsInFlight) {
		t.Fatalf("a fifth claim on stock 4: %v, want every slot taken", err)
	}
	// A released claim makes room to lower the stock; the numbers held
	// stay as they are.
	if err := s.Release(ctx, claims[1]); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStock(ctx, a.ID, 3); err != nil {
		t.Fatal(err)
	}
	k := s.KeysOf(a.ID)
	if got, _ := rdb.HGet(ctx, k.Meta, "stock").Int64(); got != 3 {
		t.Fatalf("stock %d in the meta hash, want 3", got)
	}
	// A state stamped by another master history is not live: no write.
	if err := rdb.HSet(ctx, k.Meta, "replid", "0000/2").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStock(ctx, a.ID, 9); !errors.Is(err, activity.ErrNoState) {
		t.Fatalf("SetStock of a fenced-off state: %v, want ErrNoState", err)
	}
	if got, _ := rdb.HGet(ctx, k.Meta, "stock").Int64(); got != 3 {
		t.Fatalf("a fenced-off state took the stock %d", got)
	}
}
