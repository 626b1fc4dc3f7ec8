package stock_test

import (
	"context"
	"testing"
	"time"
)

// TestLease: the lease of an activity's periodic work is taken by the
// first holder to ask, renewed for the whole ttl each time its holder asks
// again, refused to another holder until it runs out and then taken by
// it; each activity has its own, and so has the work of no one activity.
// Dropping the activity deletes its lease.
func TestLease(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 7, 5, 1)
	rdb := s.Client()
	k := s.KeysOf(a.ID)
	take := func(scope int64, holder string, ttl time.Duration, want bool) {
		t.Helper()
		got, err := s.Lease(ctx, scope, holder, ttl)
		if err != nil || got != want {
			t.Fatalf("Lease(%d, %s) = %v, %v; want %v", scope, holder, got, err, want)
		}
	}
	take(a.ID, "one", time.Minute, true)
	take(a.ID, "two", time.Minute, false)
	take(a.ID+1, "two", time.Minute, true) // another activity's
	take(0, "two", time.Minute, true)      // the work of no one activity
	take(0, "one", time.Minute, false)

	// Renewed for the whole ttl, not left to run out.
	if err := rdb.PExpire(ctx, k.Job, time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	take(a.ID, "one", time.Minute, true)
	if ttl := rdb.PTTL(ctx, k.Job).Val(); ttl < 30*time.Second {
		t.Fatalf("the renewed lease lasts %v more, want about a minute", ttl)
	}
	if v := rdb.Get(ctx, k.Job).Val(); v != "one" {
		t.Fatalf("the lease key holds %q, want the holder", v)
	}

	// Run out: another holder takes it.
	take(a.ID, "one", 50*time.Millisecond, true)
	time.Sleep(100 * time.Millisecond)
	take(a.ID, "two", time.Minute, true)
	take(a.ID, "one", time.Minute, false)

	// Given back only by its holder.
	take(a.ID, "one", 0, false)
	if v := rdb.Get(ctx, k.Job).Val(); v != "two" {
		t.Fatalf("another holder gave the lease back: the key holds %q", v)
	}
	take(a.ID, "two", 0, false)
	take(a.ID, "one", time.Minute, true)

	if err := s.Drop(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if n := rdb.Exists(ctx, k.Job).Val(); n != 0 {
		t.Fatal("the lease outlived the activity's Drop")
	}
}

// TestWorkLease: a named share of the work has a lease of its own, apart
// from the activities' and from the work of no one activity, taken by one
// holder at a time and given back only by its holder.
func TestWorkLease(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 8, 5, 1)
	take := func(name, holder string, ttl time.Duration, want bool) {
		t.Helper()
		got, err := s.WorkLease(ctx, name, holder, ttl)
		if err != nil || got != want {
			t.Fatalf("WorkLease(%s, %s) = %v, %v; want %v", name, holder, got, err, want)
		}
	}
	take("tokens", "one", time.Minute, true)
	take("tokens", "two", time.Minute, false)
	take("tokens", "one", time.Minute, true) // renewed
	take("other", "two", time.Minute, true)
	for _, scope := range []int64{0, a.ID} {
		if ok, err := s.Lease(ctx, scope, "two", time.Minute); err != nil || !ok {
			t.Fatalf("Lease(%d) beside the named leases = %v, %v; want its own lease", scope, ok, err)
		}
	}
	take("tokens", "two", 0, false) // not its holder's: kept
	take("tokens", "two", time.Minute, false)
	take("tokens", "one", 0, false)
	take("tokens", "two", time.Minute, true)

	take("tokens", "two", 50*time.Millisecond, true)
	time.Sleep(100 * time.Millisecond)
	take("tokens", "one", time.Minute, true)
}
