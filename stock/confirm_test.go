package stock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"seckill/activity"
	"seckill/stock"
)

// TestConfirmOfAGhostClaim: a claim was given back (released by its
// caller, or reaped once its lease ran out) but its lock is still there, as
// a give-back that missed it would leave it. Its lease is gone, so it must
// not confirm: the slot it names is not counted as claimed any more, and
// issuing it would make more tokens issued than slots claimed.
func TestConfirmOfAGhostClaim(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		giveBack func(t *testing.T, s *stock.Store, c activity.Claim)
	}{
		{"Released", func(t *testing.T, s *stock.Store, c activity.Claim) {
			if err := s.Release(ctx, c); err != nil {
				t.Fatal(err)
			}
		}},
		{"Reaped", func(t *testing.T, s *stock.Store, c activity.Claim) {
			runOut(t, s, c)
			if n, err := s.Reap(ctx, c.ActivityID, 10); err != nil || n != 1 {
				t.Fatalf("reap: %d %v, want the claim given back", n, err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, a := newStore(t, 1, 1, 1)
			k := s.KeysOf(a.ID)
			ghost := claim(t, s, a.ID, "ghost")
			tc.giveBack(t, s, ghost)
			s.Client().Set(ctx, k.Lock(ghost.Slot), ghost.ClaimID, time.Minute)

			if err := s.Confirm(ctx, ghost, time.Now()); !errors.Is(err, activity.ErrLeaseLost) {
				t.Fatalf("confirm of the ghost claim: %v, want ErrLeaseLost", err)
			}
			got := counters(t, s, a.ID)
			if got.Issued > got.Claimed {
				t.Fatalf("counters %+v: more issued than claimed", got)
			}
			if got != (activity.Counters{}) {
				t.Fatalf("counters %+v, want zero", got)
			}
		})
	}
}

// TestConfirmChecksTheEpoch: a confirm carries the epoch of its claim, and
// a state of another epoch refuses it even while the claim's lease is
// listed.
//
// Only a hand-made state gets there: the epoch changes only in a rebuild,
// which deletes every lease and slot lock before anything else
// (rebuild_clear.lua), and claim IDs are unique, so in any state the
// service makes, the lease check alone refuses a claim of an earlier epoch
// (TestConfirmOfAnEarlierEpochFindsNoLease). The epoch check keeps that so
// should a rebuild ever keep leases, and it keeps a token from being issued
// under an epoch it was not claimed in. Settle checks the epoch the same way.
func TestConfirmChecksTheEpoch(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 1, 5, 1)
	c := claim(t, s, a.ID, "ann")
	if c.Epoch != 1 {
		t.Fatalf("epoch %d, want 1", c.Epoch)
	}
	s.Client().HSet(ctx, s.KeysOf(a.ID).Meta, "epoch", 2)

	if err := s.Confirm(ctx, c, time.Now()); !errors.Is(err, activity.ErrLeaseLost) {
		t.Fatalf("confirm of an epoch-1 claim in epoch 2: %v, want ErrLeaseLost", err)
	}
	if got := counters(t, s, a.ID); got != (activity.Counters{Claimed: 1, InFlight: 1}) {
		t.Fatalf("counters %+v, want the claim still in flight, nothing issued", got)
	}
	out, err := s.Settle(ctx, a.ID, []activity.Participation{settledAs(c)})
	if err != nil || out[0] != activity.OutcomeGivenBack {
		t.Fatalf("settle of the epoch-1 claim: %v %v, want given back (void)", out, err)
	}
}

// TestConfirmOfAnEarlierEpochFindsNoLease: a claim in flight when the state
// is rebuilt, and a claim of the new epoch by the same user that gets the
// same slot and the same sequence number. The old claim's lease went with
// the rebuild, so it cannot confirm; the new one does. (This holds by the
// lease check alone, with or without the epoch check.)
func TestConfirmOfAnEarlierEpochFindsNoLease(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 1, 5, 1)
	old := claim(t, s, a.ID, "ann")
	a.Epoch = 2
	if err := rebuild(t, s, a, nil); err != nil {
		t.Fatal(err)
	}
	fresh := claim(t, s, a.ID, "ann")
	if fresh.Slot != old.Slot || fresh.Seq != old.Seq || fresh.Epoch != 2 {
		t.Fatalf("new claim: slot %d seq %d epoch %d, want slot %d seq %d epoch 2",
			fresh.Slot, fresh.Seq, fresh.Epoch, old.Slot, old.Seq)
	}
	if err := s.Confirm(ctx, old, time.Now()); !errors.Is(err, activity.ErrLeaseLost) {
		t.Fatalf("confirm of the epoch-1 claim: %v, want ErrLeaseLost", err)
	}
	if err := s.Confirm(ctx, fresh, time.Now()); err != nil {
		t.Fatalf("confirm of the epoch-2 claim: %v", err)
	}
	if got := counters(t, s, a.ID); got != (activity.Counters{Claimed: 1, Issued: 1}) {
		t.Fatalf("counters %+v, want 1 claimed and issued", got)
	}
	out, err := s.Settle(ctx, a.ID, []activity.Participation{settledAs(old), settledAs(fresh)})
	if err != nil || out[0] != activity.OutcomeGivenBack || out[1] != activity.OutcomeConfirmed {
		t.Fatalf("settle: %v %v, want the old one given back and the new one confirmed", out, err)
	}
}

// TestConfirmedReadsTheRecord: Confirmed finds a confirmed claim whose
// record is not settled yet as it was confirmed (slot, user, issuedAt,
// epoch), and finds nothing, without an error, for a claim in flight or one
// it never saw.
func TestConfirmedReadsTheRecord(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 1, 5, 1)
	issuedAt := time.UnixMilli(1_700_000_000_123).UTC()
	c := claim(t, s, a.ID, "ann")
	if err := s.Confirm(ctx, c, issuedAt); err != nil {
		t.Fatal(err)
	}
	p, ok, err := s.Confirmed(ctx, a.ID, c.ClaimID)
	if err != nil || !ok {
		t.Fatalf("lookup of the confirmed claim: %v %v", ok, err)
	}
	if p.Slot != c.Slot || p.UserID != "ann" || p.ClaimID != c.ClaimID || p.Epoch != 1 || !p.IssuedAt.Equal(issuedAt) {
		t.Fatalf("lookup: %+v, want slot %d of ann, epoch 1, issued at %v", p, c.Slot, issuedAt)
	}
	inFlight := claim(t, s, a.ID, "bob")
	for _, id := range []string{inFlight.ClaimID, "never-claimed"} {
		if p, ok, err := s.Confirmed(ctx, a.ID, id); ok || err != nil {
			t.Fatalf("lookup of %s: %+v %v %v, want nothing found", id, p, ok, err)
		}
	}
}

// TestConfirmOnAStateBackFromASnapshot: a claim is in flight when Redis
// saves a snapshot, and Redis restarts from it. Its lease and lock came back
// with the snapshot, but the state is not the live one (whatever was
// written after the snapshot is lost): the claim cannot confirm on it.
func TestConfirmOnAStateBackFromASnapshot(t *testing.T) {
	ctx := context.Background()
	srv, rdb, s, a := privateSale(t)
	c := claim(t, s, a.ID, "ann")
	if err := rdb.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	k := s.KeysOf(a.ID)
	if rdb.Exists(ctx, k.Lock(c.Slot)).Val() != 1 || rdb.ZCard(ctx, k.Leases).Val() != 1 {
		t.Fatal("the claim's lease and lock did not come back with the snapshot")
	}
	if err := s.Confirm(ctx, c, time.Now()); !errors.Is(err, activity.ErrLeaseLost) {
		t.Fatalf("confirm on the state from the snapshot: %v, want ErrLeaseLost", err)
	}
	if n := rdb.Get(ctx, k.Issued).Val(); n != "0" {
		t.Fatalf("issued %q on the state from the snapshot, want 0", n)
	}
}
