package activity_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"seckill/activity"
	"seckill/activity/mysql"
	"seckill/internal/testenv"
)

func cycle(t *testing.T, env *testenv.Env) activity.ReconcileReport {
	t.Helper()
	rep, err := env.Job.Cycle(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestCycleReport: a cycle writes the stock snapshot when it was never
// written or has changed, and only then, and reports as drift the tokens
// issued whose records MySQL does not hold yet.
func TestCycleReport(t *testing.T) {
	ctx := context.Background()
	q := &queueRecorder{}
	env := testenv.New(t, testenv.Options{Recorder: func(*mysql.Repository) activity.Recorder { return q }})
	a := env.OpenActivity(t, 5, 1)
	if rep := cycle(t, env); rep.Snapshots != 1 || rep.Drift != 0 {
		t.Fatalf("first cycle %+v, want the first snapshot and no drift", rep)
	}
	for _, u := range []string{"ann", "bob"} {
		if _, err := env.Svc.Join(ctx, a.ID, u, ""); err != nil {
			t.Fatal(err)
		}
	}
	if rep := cycle(t, env); rep.Snapshots != 1 || rep.Drift != 2 {
		t.Fatalf("cycle after two joins %+v, want a snapshot and drift 2", rep)
	}
	if rep := cycle(t, env); rep.Snapshots != 0 || rep.Drift != 2 {
		t.Fatalf("cycle with nothing new %+v, want no snapshot and drift 2", rep)
	}
	if err := env.Svc.StoreEvents(ctx, q.drain()); err != nil {
		t.Fatal(err)
	}
	if rep := cycle(t, env); rep.Snapshots != 0 || rep.Drift != 0 {
		t.Fatalf("cycle once the records are in %+v, want no snapshot and no drift", rep)
	}
	if got, _ := env.Svc.Get(ctx, a.ID); got.Surplus != 3 || got.ReconciledAt == nil {
		t.Fatalf("snapshot %d at %v, want 3, written", got.Surplus, got.ReconciledAt)
	}
}

// TestOneCycleReapsEveryExpiredClaim: the reaper gives claims back a batch
// at a time until none whose lease ran out is left, in one cycle.
func TestOneCycleReapsEveryExpiredClaim(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{Lease: 50 * time.Millisecond})
	const n = 1005 // more than one batch
	a := env.OpenActivity(t, n, 1)
	for i := range n {
		c := activity.Claim{ActivityID: a.ID, UserID: fmt.Sprint("u", i), ClaimID: fmt.Sprint("c", i)}
		if err := env.Store.Claim(ctx, &c); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond) // past every lease
	if rep := cycle(t, env); rep.Reaped != n {
		t.Fatalf("one cycle reaped %d of %d expired claims", rep.Reaped, n)
	}
}

// TestRetentionDropsOnlyTheFinished: past the retention, the state of a
// closed activity goes, and so does a state MySQL does not know; both leave
// the list Redis keeps, while an open activity beside them sells on. The
// stock snapshot left in MySQL is the final one, even when a claim was
// given back after the last cycle that wrote it, and a sale that sold
// nothing is marked reconciled too.
func TestRetentionDropsOnlyTheFinished(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	env.Svc.SetRetention(time.Second)
	open := env.OpenActivity(t, 3, 1)
	sold := env.OpenActivity(t, 3, 1)
	if _, err := env.Svc.Join(ctx, sold.ID, "ann", ""); err != nil {
		t.Fatal(err)
	}
	late := activity.Claim{ActivityID: sold.ID, UserID: "bob", ClaimID: "late-claim"}
	if err := env.Store.Claim(ctx, &late); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Svc.Transition(ctx, sold.ID, activity.ActionClose); err != nil {
		t.Fatal(err)
	}
	env.Reconcile(t) // the snapshot of the sold one counts the late claim
	if err := env.Store.Release(ctx, late); err != nil {
		t.Fatal(err)
	}
	// No cycle sees this one before its retention is over.
	empty := env.OpenActivity(t, 3, 1)
	if _, err := env.Svc.Transition(ctx, empty.ID, activity.ActionClose); err != nil {
		t.Fatal(err)
	}
	// A state MySQL knows nothing of: its database was made again.
	orphan := &activity.Activity{ID: empty.ID + 1000, Stock: 3, PerUserLimit: 1, State: activity.StateOpen,
		BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour)}
	if err := env.Store.Preheat(ctx, orphan); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // past the retention
	if _, err := env.Job.Cycle(ctx); err != nil {
		t.Fatal(err)
	}
	listed, err := env.Store.Listed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(listed, []int64{open.ID}) {
		t.Fatalf("listed after the retention %v, want only the open activity %d", listed, open.ID)
	}
	for _, a := range []*activity.Activity{sold, empty, orphan} {
		if keys := testenv.Keys(t, env.Redis, fmt.Sprintf("%s:{%d}:*", env.Prefix, a.ID)); len(keys) != 0 {
			t.Fatalf("keys of closed activity %d left: %v", a.ID, keys)
		}
	}
	if _, err := env.Svc.Join(ctx, open.ID, "ann", ""); err != nil {
		t.Fatalf("join of the open activity: %v", err)
	}
	if got, _ := env.Svc.Get(ctx, sold.ID); got.Surplus != 2 {
		t.Fatalf("snapshot of the sold activity %d, want 2: the claim given back after the last cycle", got.Surplus)
	}
	if got, _ := env.Svc.Get(ctx, empty.ID); got.Surplus != 3 || got.ReconciledAt == nil {
		t.Fatalf("snapshot of the empty activity %d at %v, want 3, written", got.Surplus, got.ReconciledAt)
	}
}

// failingLog is an event log that cannot say whether it caught up.
type failingLog struct{}

func (failingLog) WaitCaughtUp(context.Context, int64) error {
	return activity.Unavailable("kafka", errors.New("no broker"))
}

// caughtUpLog is an event log that has always caught up.
type caughtUpLog struct{}

func (caughtUpLog) WaitCaughtUp(context.Context, int64) error { return nil }

// TestRebuildWaitsForTheEventLog: a lost state is not rebuilt while the
// event log cannot tell that every acknowledged event is in MySQL; once it
// can, it is.
func TestRebuildWaitsForTheEventLog(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	a := env.OpenActivity(t, 3, 1)
	testenv.DeletePrefix(env.Redis, env.Prefix)
	env.Svc.UseEventLog(failingLog{})
	if rep, err := env.Job.Cycle(ctx); err == nil || rep.Rebuilt != 0 {
		t.Fatalf("cycle with the event log down: %+v %v, want an error and no rebuild", rep, err)
	}
	if _, ok, _ := env.Store.Counters(ctx, a.ID); ok {
		t.Fatal("rebuilt without the event log")
	}
	env.Svc.UseEventLog(caughtUpLog{})
	if rep := cycle(t, env); rep.Rebuilt != 1 {
		t.Fatalf("cycle with the event log back %+v, want the rebuild", rep)
	}
	if _, err := env.Svc.Join(ctx, a.ID, "ann", ""); err != nil {
		t.Fatalf("join after the rebuild: %v", err)
	}
}

// TestLostStateAnswers: while an open activity's Redis state is lost, a
// join and a token whose record is still on its way answer unavailable
// (503: the state is rebuilt, never sold from zero); once a closed
// activity's retention is over, a token MySQL does not know is not found.
func TestLostStateAnswers(t *testing.T) {
	ctx := context.Background()
	q := &queueRecorder{}
	env := testenv.New(t, testenv.Options{Recorder: func(*mysql.Repository) activity.Recorder { return q }})
	env.Svc.SetRetention(time.Second)
	a := env.OpenActivity(t, 3, 1)
	p, err := env.Svc.Join(ctx, a.ID, "ann", "")
	if err != nil {
		t.Fatal(err)
	}
	testenv.DeletePrefix(env.Redis, env.Prefix)
	if _, err := env.Svc.Join(ctx, a.ID, "bob", ""); !errors.Is(err, activity.ErrUnavailable) {
		t.Fatalf("join with the state lost: %v, want unavailable", err)
	}
	if _, err := env.Svc.Token(ctx, p.Token); !errors.Is(err, activity.ErrUnavailable) {
		t.Fatalf("token with its record on its way and the state lost: %v, want unavailable", err)
	}
	q.drain() // the event is lost with the state: the join's record never comes
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionClose); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // past the retention
	if _, err := env.Svc.Token(ctx, p.Token); !errors.Is(err, activity.ErrNotFound) {
		t.Fatalf("token MySQL does not know, past the retention: %v, want not found", err)
	}
}
