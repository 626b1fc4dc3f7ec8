package job_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"seckill/activity"
	"seckill/internal/testenv"
	"seckill/job"
)

// cycle is what Observe was told about one cycle.
type cycle struct {
	rep activity.ReconcileReport
	err error
}

// runJob runs r in the background and returns what r observes, and stop,
// which ends r's context and fails the test unless Run returns. Run ends
// with the test at the latest.
func runJob(t *testing.T, r *job.Reconciler) (cycles <-chan cycle, stop func()) {
	t.Helper()
	observed := make(chan cycle, 100)
	r.Observe = func(rep activity.ReconcileReport, _ time.Duration, err error) {
		select {
		case observed <- cycle{rep, err}:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		r.Run(ctx)
		close(done)
	}()
	returned := func() bool {
		cancel()
		select {
		case <-done:
			return true
		case <-time.After(10 * time.Second):
			return false
		}
	}
	t.Cleanup(func() { returned() })
	return observed, func() {
		t.Helper()
		if !returned() {
			t.Fatal("Run did not return within 10 s after its context ended")
		}
	}
}

// next waits for the next observed cycle.
func next(t *testing.T, cycles <-chan cycle) cycle {
	t.Helper()
	select {
	case c := <-cycles:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no cycle observed in 10 s")
		return cycle{}
	}
}

// TestRun: the job runs a cycle every interval, one second when none is
// set, tells Observe what each did and how it failed, and returns when its
// context ends.
func TestRun(t *testing.T) {
	ctx := context.Background()
	t.Run("CyclesUntilCancelled", func(t *testing.T) {
		env := testenv.New(t, testenv.Options{})
		a := env.OpenActivity(t, 10, 1)
		if _, err := env.Svc.Join(ctx, a.ID, "u", ""); err != nil {
			t.Fatal(err)
		}
		cycles, stop := runJob(t, &job.Reconciler{Svc: env.Svc, Interval: 10 * time.Millisecond, Log: testenv.Logger(t)})
		if c := next(t, cycles); c.err != nil || c.rep.Valid != 1 || c.rep.Activities != 1 {
			t.Fatalf("first cycle: %+v, want the record settled", c)
		}
		for range 3 {
			if c := next(t, cycles); c.err != nil || c.rep.Valid != 0 {
				t.Fatalf("later cycle: %+v, want nothing left to settle", c)
			}
		}
		stop()
	})
	t.Run("DefaultInterval", func(t *testing.T) {
		env := testenv.New(t, testenv.Options{})
		cycles, stop := runJob(t, &job.Reconciler{Svc: env.Svc, Log: testenv.Logger(t)})
		if c := next(t, cycles); c.err != nil {
			t.Fatalf("cycle: %v", c.err)
		}
		stop()
	})
	t.Run("FailuresAreObserved", func(t *testing.T) {
		env := testenv.New(t, testenv.Options{})
		env.DB.Close() // MySQL goes away
		cycles, stop := runJob(t, &job.Reconciler{Svc: env.Svc, Interval: 10 * time.Millisecond, Log: testenv.Logger(t)})
		for range 2 {
			if c := next(t, cycles); !errors.Is(c.err, activity.ErrUnavailable) {
				t.Fatalf("cycle without MySQL: %v, want unavailable", c.err)
			}
		}
		stop()
	})
}
