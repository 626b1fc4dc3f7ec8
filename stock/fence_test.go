package stock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"seckill/activity"
	"seckill/internal/testenv"
	"seckill/stock"
)

// TestFenceAfterRestartFromSnapshot: Redis saves a snapshot mid-sale, sells
// on, crashes and starts again from the snapshot. The state that came back
// lacks the last writes and must not be taken for the live one by any
// script, until a rebuild makes it live again.
func TestFenceAfterRestartFromSnapshot(t *testing.T) {
	ctx := context.Background()
	srv := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	s := stock.New(rdb, stock.Options{Lease: time.Minute})
	t.Cleanup(s.Stop)
	a := &activity.Activity{ID: 5, Stock: 3, PerUserLimit: 1, State: activity.StateOpen,
		BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour)}
	if err := s.Preheat(ctx, a); err != nil {
		t.Fatal(err)
	}
	saved := claim(t, s, a.ID, "saved")
	if err := s.Confirm(ctx, saved, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	lost := claim(t, s, a.ID, "lost") // confirmed after the snapshot
	if err := s.Confirm(ctx, lost, time.Now()); err != nil {
		t.Fatal(err)
	}
	inFlight := claim(t, s, a.ID, "inflight")

	srv.Restart() // SIGKILL, then start on the same directory: the snapshot
	if n := rdb.Exists(ctx, s.KeysOf(a.ID).Meta).Val(); n != 1 {
		t.Fatalf("the snapshot did not come back (meta exists %d)", n)
	}

	c := activity.Claim{ActivityID: a.ID, UserID: "next", ClaimID: "next"}
	if err := s.Claim(ctx, &c); !errors.Is(err, activity.ErrNoState) {
		t.Fatalf("claim on the state from the snapshot: %v, want ErrNoState", err)
	}
	if err := s.Confirm(ctx, inFlight, time.Now()); !errors.Is(err, activity.ErrLeaseLost) {
		t.Fatalf("confirm on the state from the snapshot: %v, want ErrLeaseLost", err)
	}
	out, err := s.Settle(ctx, a.ID, []activity.Participation{
		{Slot: lost.Slot, ClaimID: lost.ClaimID, UserID: "lost", Epoch: lost.Epoch, Seq: lost.Seq}})
	if err != nil || out[0] != activity.OutcomeUnknown {
		t.Fatalf("settle of the lost confirm: %v %v, want unknown (never void from a stale state)", out, err)
	}
	if _, _, err := s.Confirmed(ctx, a.ID, lost.ClaimID); !errors.Is(err, activity.ErrNoState) {
		t.Fatalf("lookup of the lost confirm: %v, want ErrNoState", err)
	}
	if _, ok, err := s.Counters(ctx, a.ID); ok || err != nil {
		t.Fatalf("counters of the state from the snapshot: live %v %v, want not live", ok, err)
	}

	a.Epoch = 2
	valid := []activity.Participation{
		{ActivityID: a.ID, Slot: saved.Slot, UserID: "saved", ClaimID: saved.ClaimID, Epoch: 1, IssuedAt: time.Now()},
		{ActivityID: a.ID, Slot: lost.Slot, UserID: "lost", ClaimID: lost.ClaimID, Epoch: 1, IssuedAt: time.Now()},
	}
	if err := s.Rebuild(ctx, a, valid); err != nil {
		t.Fatal(err)
	}
	if got := counters(t, s, a.ID); got != (activity.Counters{Claimed: 2, Issued: 2}) {
		t.Fatalf("rebuilt counters %+v, want 2 claimed and issued", got)
	}
	last := claim(t, s, a.ID, "next")
	if last.Epoch != 2 || last.Slot == saved.Slot || last.Slot == lost.Slot {
		t.Fatalf("claim after the rebuild: slot %d epoch %d", last.Slot, last.Epoch)
	}
}
