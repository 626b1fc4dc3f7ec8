package job_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"seckill/activity"
	"seckill/internal/testenv"
)

func TestCycle(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	a := env.OpenActivity(t, 10, 1)
	for _, u := range []string{"a", "b", "c"} {
		if _, err := env.Svc.Join(ctx, a.ID, u, ""); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("WritesSnapshotAndSettles", func(t *testing.T) {
		rep, err := env.Job.Cycle(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Snapshots != 1 || rep.Valid != 3 || rep.Void != 0 || rep.Pending != 0 {
			t.Fatalf("report %+v, want one snapshot and three records settled valid", rep)
		}
		got, err := env.Repo.Activity(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Surplus != 7 || got.ReconciledAt == nil {
			t.Fatalf("surplus %d at %v, want 7 and a time", got.Surplus, got.ReconciledAt)
		}
		if n, _ := env.Redis.HLen(ctx, env.Store.KeysOf(a.ID).Confirmed).Result(); n != 0 {
			t.Fatalf("%d confirmed claims still remembered after settling", n)
		}
	})
	t.Run("WritesNothingWhenNothingChanged", func(t *testing.T) {
		rep, err := env.Job.Cycle(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Snapshots != 0 || rep.Valid != 0 {
			t.Fatalf("report %+v, want no write", rep)
		}
	})
}

func TestCycleClosesActivitiesPastTheirEnd(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	name, stock, limit := "ending", int64(5), int64(1)
	begin, end := time.Now().Add(-time.Hour), time.Now().Add(3*time.Second)
	a, err := env.Svc.Create(ctx, activity.Fields{Name: &name, Stock: &stock, PerUserLimit: &limit, BeginAt: &begin, EndAt: &end})
	if err != nil {
		t.Fatal(err)
	}
	for _, act := range []activity.Action{activity.ActionApprove, activity.ActionOpen} {
		if _, err := env.Svc.Transition(ctx, a.ID, act); err != nil {
			t.Fatal(err)
		}
	}
	first, err := env.Job.Cycle(ctx)
	if err != nil || first.Closed != 0 && time.Now().Before(end) {
		t.Fatalf("cycle before the end: %+v %v, want nothing closed", first, err)
	}
	time.Sleep(time.Until(end) + 50*time.Millisecond)
	rep, err := env.Job.Cycle(ctx)
	if err != nil || first.Closed+rep.Closed != 1 {
		t.Fatalf("cycle after the end: %+v %v, want the activity closed once", rep, err)
	}
	got, err := env.Repo.Activity(ctx, a.ID)
	if err != nil || got.State != activity.StateClosed {
		t.Fatalf("state %v %v, want closed", got.State, err)
	}
	if _, err := env.Svc.Join(ctx, a.ID, "late", ""); !errors.Is(err, activity.ErrNotOpen) {
		t.Fatalf("join after closing: %v, want ErrNotOpen", err)
	}
}
