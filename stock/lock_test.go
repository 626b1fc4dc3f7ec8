package stock_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"seckill/activity"
	"seckill/internal/testenv"
	"seckill/stock"
)

// leasedStore returns a Store of the given lease on the test Redis, with
// its key prefix, and a preheated open activity. Another Store on rdb and
// prefix (stock.New) shares the activity's keys.
func leasedStore(t *testing.T, lease time.Duration, id, stockN, perUser int64) (*stock.Store, *activity.Activity, *redis.Client, string) {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	s := stock.New(rdb, stock.Options{Prefix: prefix, Lease: lease})
	t.Cleanup(s.Stop)
	a := &activity.Activity{ID: id, Stock: stockN, PerUserLimit: perUser, State: activity.StateOpen,
		BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour)}
	if err := s.Preheat(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	return s, a, rdb, prefix
}

// waitGone waits until key has expired, for at most ten seconds.
func waitGone(t *testing.T, rdb redis.UniversalClient, key string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Exists(context.Background(), key).Val() == 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%s still there after ten seconds (ttl %v): it does not expire", key, rdb.PTTL(context.Background(), key).Val())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// leaseOf returns the member of c's lease in the leases sorted set.
func leaseOf(t *testing.T, s *stock.Store, c activity.Claim) string {
	t.Helper()
	k := s.KeysOf(c.ActivityID)
	ms, err := s.Client().ZRange(context.Background(), k.Leases, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if strings.HasPrefix(m, fmt.Sprintf("%d:%s:", c.Slot, c.ClaimID)) {
			return m
		}
	}
	t.Fatalf("no lease of %s among %v", c.ClaimID, ms)
	return ""
}

// runOut sets the deadline of c's lease in the past, as if its process had
// stalled past it: the next reap gives it back. The lock keeps its TTL.
func runOut(t *testing.T, s *stock.Store, c activity.Claim) {
	t.Helper()
	k := s.KeysOf(c.ActivityID)
	if err := s.Client().ZAddXX(context.Background(), k.Leases, redis.Z{Score: 1, Member: leaseOf(t, s, c)}).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestSlotLockLastsTheLease: a claim's slot lock expires with its lease.
// A claim that stalls past its lease therefore cannot confirm, even before
// the reaper gives it back; its caller releases it and the slot is sold
// again.
func TestSlotLockLastsTheLease(t *testing.T) {
	ctx := context.Background()
	t.Run("TTL", func(t *testing.T) {
		s, a := newStore(t, 1, 5, 1) // a lease of a minute
		c := claim(t, s, a.ID, "ann")
		ttl := s.Client().PTTL(ctx, s.KeysOf(a.ID).Lock(c.Slot)).Val()
		if ttl <= 50*time.Second || ttl > time.Minute {
			t.Fatalf("the lock's TTL is %v after the claim, want close to the lease of a minute", ttl)
		}
	})
	t.Run("StalledClaimCannotConfirm", func(t *testing.T) {
		s, a, rdb, _ := leasedStore(t, 200*time.Millisecond, 1, 1, 1)
		c := claim(t, s, a.ID, "ann")
		waitGone(t, rdb, s.KeysOf(a.ID).Lock(c.Slot))
		if err := s.Confirm(ctx, c, time.Now()); !errors.Is(err, activity.ErrLeaseLost) {
			t.Fatalf("confirm after the lease: %v, want ErrLeaseLost", err)
		}
		if got := counters(t, s, a.ID); got != (activity.Counters{Claimed: 1, InFlight: 1}) {
			t.Fatalf("counters %+v, want the claim still listed until it is given back", got)
		}
		if err := s.Release(ctx, c); err != nil {
			t.Fatal(err)
		}
		if again := claim(t, s, a.ID, "bob"); again.Slot != c.Slot {
			t.Fatalf("the released slot was not sold again: got %d, want %d", again.Slot, c.Slot)
		}
	})
}

// TestStaleLockFreesTheLastSlot: a slot lock left without its claim's
// records (a state that lost its lease, its bit and its count, or a claim
// of an earlier version) keeps its number only until the lease runs out.
// The last slot is refused while the lock is there, and sold after.
func TestStaleLockFreesTheLastSlot(t *testing.T) {
	ctx := context.Background()
	// The lease leaves a second for the claim refused before it ends.
	s, a, rdb, _ := leasedStore(t, time.Second, 1, 1, 1)
	k := s.KeysOf(a.ID)
	ghost := claim(t, s, a.ID, "ghost")
	rdb.ZRem(ctx, k.Leases, leaseOf(t, s, ghost))
	rdb.SetBit(ctx, k.Slots, ghost.Slot, 0)
	rdb.Decr(ctx, k.Used)

	c := activity.Claim{ActivityID: a.ID, UserID: "ann", ClaimID: "early"}
	if err := s.Claim(ctx, &c); !errors.Is(err, activity.ErrUnavailable) {
		t.Fatalf("claim while the stale lock holds the last slot: %v (slot %d), want unavailable", err, c.Slot)
	}
	if got := counters(t, s, a.ID); got != (activity.Counters{}) {
		t.Fatalf("counters %+v after the refused claim, want zero", got)
	}
	waitGone(t, rdb, k.Lock(ghost.Slot))
	if late := claim(t, s, a.ID, "ann"); late.Slot != ghost.Slot {
		t.Fatalf("claim after the lease got slot %d, want %d", late.Slot, ghost.Slot)
	}
}

// TestGiveBackLeavesAnotherClaimsLock: claim A's lock expires while its
// lease is still listed, claim B takes the same number, and then A is given
// back, released by its caller or reaped. B owns the lock now: the give-back
// must leave it, and B confirms.
//
// In a live state the slot's bit keeps B off the number until A is given
// back, so the state is made by hand: the bit and the count are taken back,
// as a state that lost them would have it (see TestClaimAroundAStaleLock).
func TestGiveBackLeavesAnotherClaimsLock(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		giveBack func(t *testing.T, s *stock.Store, a activity.Claim)
	}{
		{"Released", func(t *testing.T, s *stock.Store, a activity.Claim) {
			if err := s.Release(ctx, a); err != nil {
				t.Fatal(err)
			}
		}},
		{"Reaped", func(t *testing.T, s *stock.Store, a activity.Claim) {
			runOut(t, s, a)
			if n, err := s.Reap(ctx, a.ActivityID, 10); err != nil || n != 1 {
				t.Fatalf("reap: %d %v, want A given back", n, err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, act := newStore(t, 1, 1, 1)
			k := s.KeysOf(act.ID)
			rdb := s.Client()
			a := claim(t, s, act.ID, "ann")
			rdb.PExpire(ctx, k.Lock(a.Slot), time.Millisecond)
			waitGone(t, rdb, k.Lock(a.Slot))
			rdb.SetBit(ctx, k.Slots, a.Slot, 0)
			rdb.Decr(ctx, k.Used)

			b := claim(t, s, act.ID, "bob")
			if b.Slot != a.Slot {
				t.Fatalf("B got slot %d, want A's %d", b.Slot, a.Slot)
			}
			tc.giveBack(t, s, a)
			if got := rdb.Get(ctx, k.Lock(b.Slot)).Val(); got != b.ClaimID {
				t.Fatalf("the slot's lock is %q after A was given back, want B's %q", got, b.ClaimID)
			}
			// The counters are off by the count taken back by hand; only the
			// lock is looked at.
			if err := s.Confirm(ctx, b, time.Now()); err != nil {
				t.Fatalf("B's confirm: %v", err)
			}
		})
	}
}

// TestLockReleaseLeavesTheNextHoldersLock: a named lock that ran out and
// was taken by another is not released by its first holder.
func TestLockReleaseLeavesTheNextHoldersLock(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 1, 1, 1)
	first, err := s.Lock(ctx, a.ID, "rebuild", time.Minute)
	if err != nil || first == nil {
		t.Fatalf("first lock: %v %v", first, err)
	}
	key := strings.TrimSuffix(s.KeysOf(a.ID).Meta, "meta") + "rebuild"
	s.Client().PExpire(ctx, key, time.Millisecond)
	waitGone(t, s.Client(), key)
	second, err := s.Lock(ctx, a.ID, "rebuild", time.Minute)
	if err != nil || second == nil {
		t.Fatalf("second lock: %v %v", second, err)
	}
	first.Release()
	if got := s.Client().Get(ctx, key).Val(); got != second.Token {
		t.Fatalf("the lock holds %q after the first holder's release, want the second's %q", got, second.Token)
	}
	if again, err := s.Lock(ctx, a.ID, "rebuild", time.Minute); err != nil || again != nil {
		t.Fatalf("a third lock while the second holds it: %v %v, want none", again, err)
	}
}
