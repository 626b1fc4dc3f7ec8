package stock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"seckill/activity"
	"seckill/stock"
)

// waitPastLease waits until the Redis clock of c's activity is past the
// deadline of c's lease.
func waitPastLease(t *testing.T, s *stock.Store, c activity.Claim) {
	t.Helper()
	ctx := context.Background()
	ms, err := s.Client().ZScore(ctx, s.KeysOf(c.ActivityID).Leases, leaseOf(t, s, c)).Result()
	if err != nil {
		t.Fatal(err)
	}
	for stop := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		now, err := s.Now(ctx, c.ActivityID)
		if err != nil {
			t.Fatal(err)
		}
		if now.UnixMilli() > int64(ms) {
			return
		}
		if time.Now().After(stop) {
			t.Fatalf("the lease of %s is still running after ten seconds", c.ClaimID)
		}
	}
}

// TestReapGivesBackOnlyExpiredLeases: two claims stall past a short lease;
// a claim made by another instance, of a lease of a minute, is in flight.
// The reaper gives back the two, no more in a call than its limit, each
// once, and never the live one. Their users' entries go, and the users
// join again; the claims given back cannot confirm and settle as void.
func TestReapGivesBackOnlyExpiredLeases(t *testing.T) {
	ctx := context.Background()
	short, a, rdb, prefix := leasedStore(t, 200*time.Millisecond, 1, 200, 1)
	long := stock.New(rdb, stock.Options{Prefix: prefix, Lease: time.Minute})
	t.Cleanup(long.Stop)
	k := short.KeysOf(a.ID)
	buckets := stock.UserBuckets(a.Stock)
	ann, bob := claim(t, short, a.ID, "ann"), claim(t, short, a.ID, "bob")
	cat := claim(t, long, a.ID, "cat")
	waitPastLease(t, short, ann)
	waitPastLease(t, short, bob)

	for i, want := range []int{1, 1, 0} {
		limit := 10
		if i == 0 {
			limit = 1
		}
		if n, err := short.Reap(ctx, a.ID, limit); err != nil || n != want {
			t.Fatalf("reap %d (limit %d): %d %v, want %d", i+1, limit, n, err, want)
		}
	}
	if got := counters(t, short, a.ID); got != (activity.Counters{Claimed: 1, InFlight: 1}) {
		t.Fatalf("counters %+v, want cat's claim alone", got)
	}
	if l := lockKeys(t, short, a.ID); len(l) != 1 || l[0] != k.Lock(cat.Slot) {
		t.Fatalf("locks %v, want cat's alone", l)
	}
	for _, c := range []activity.Claim{ann, bob} {
		if rdb.HExists(ctx, k.UserKey(c.UserID, buckets), c.UserID).Val() {
			t.Fatalf("%s's entry is left after the reap", c.UserID)
		}
		if err := short.Confirm(ctx, c, time.Now()); !errors.Is(err, activity.ErrLeaseLost) {
			t.Fatalf("confirm of %s's reaped claim: %v, want ErrLeaseLost", c.UserID, err)
		}
	}
	out, err := short.Settle(ctx, a.ID, []activity.Participation{settledAs(ann), settledAs(bob), settledAs(cat)})
	if err != nil || out[0] != activity.OutcomeGivenBack || out[1] != activity.OutcomeGivenBack || out[2] != activity.OutcomeInFlight {
		t.Fatalf("settle: %v %v, want ann's and bob's given back, cat's in flight", out, err)
	}
	claim(t, long, a.ID, "ann")
	claim(t, long, a.ID, "bob")
	if err := long.Confirm(ctx, cat, time.Now()); err != nil {
		t.Fatalf("cat's confirm: %v", err)
	}
}

// TestSettleTellsEachOutcome: one call settles a confirmed claim, one in
// flight, one given back and one the state never saw, in order.
func TestSettleTellsEachOutcome(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 1, 5, 1)
	done := claim(t, s, a.ID, "ann")
	if err := s.Confirm(ctx, done, time.Now()); err != nil {
		t.Fatal(err)
	}
	inFlight := claim(t, s, a.ID, "bob")
	gone := claim(t, s, a.ID, "cat")
	if err := s.Release(ctx, gone); err != nil {
		t.Fatal(err)
	}
	unknown := activity.Participation{Slot: 4, UserID: "dan", ClaimID: "unknown", Epoch: 1, Seq: 9}
	out, err := s.Settle(ctx, a.ID, []activity.Participation{settledAs(done), settledAs(inFlight), settledAs(gone), unknown})
	want := []activity.Outcome{activity.OutcomeConfirmed, activity.OutcomeInFlight, activity.OutcomeGivenBack, activity.OutcomeGivenBack}
	if err != nil || len(out) != len(want) {
		t.Fatalf("settle: %v %v", out, err)
	}
	for i := range want {
		if out[i] != want[i] {
			t.Fatalf("settle: %v, want %v", out, want)
		}
	}
}

// TestForgetLeavesAStaleStateAlone: Redis restarts from a snapshot holding
// a confirmed token; forgetting the token changes nothing in that state,
// which is not live: it is only ever cleared and rebuilt.
func TestForgetLeavesAStaleStateAlone(t *testing.T) {
	ctx := context.Background()
	srv, rdb, s, a := privateSale(t)
	c := confirmed(t, s, a.ID, "ann", "k1")
	if err := rdb.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	if err := s.Forget(ctx, a.ID, []activity.Participation{settledAs(c)}); err != nil {
		t.Fatal(err)
	}
	k := s.KeysOf(a.ID)
	if !rdb.HExists(ctx, k.Confirmed, c.ClaimID).Val() || !rdb.HExists(ctx, k.Held, "ann").Val() {
		t.Fatal("forget changed a state that is not live")
	}
}

// TestReapDeletesTheLock: the reaper may give a claim back in the very
// millisecond its deadline passes, when its lock has not expired yet (Redis
// expires a key only after its time): the lock goes with the claim, and the
// slot is sold again at once. Here the deadline is moved back by hand.
func TestReapDeletesTheLock(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 1, 1, 1)
	c := claim(t, s, a.ID, "ann")
	runOut(t, s, c)
	if n, err := s.Reap(ctx, a.ID, 10); err != nil || n != 1 {
		t.Fatalf("reap: %d %v, want the claim given back", n, err)
	}
	if l := lockKeys(t, s, a.ID); len(l) != 0 {
		t.Fatalf("locks left after the reap: %v", l)
	}
	if next := claim(t, s, a.ID, "bob"); next.Slot != c.Slot {
		t.Fatalf("claim after the reap got slot %d, want %d", next.Slot, c.Slot)
	}
}
