// Package job runs the periodic work of the service: it gives back claims
// whose lease ran out, settles participation records as valid or void,
// writes each live activity's stock snapshot into MySQL, and closes
// activities whose time is over.
package job

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"seckill/activity"
	"seckill/internal/loggate"
)

// DefaultInterval is how often the job runs.
const DefaultInterval = time.Second

const (
	reapBatch   = 1000
	settleBatch = 5000
)

// Reconciler is the periodic job. Every instance may run one: each step is
// atomic in Redis or idempotent in MySQL.
type Reconciler struct {
	Svc      *activity.Service
	Repo     activity.Repository
	Slots    activity.SlotStore
	Interval time.Duration
	Log      *slog.Logger
	// Locks keeps two instances from rebuilding the same activity at once.
	Locks Locker
	// Events, when set, is waited on before a rebuild until every
	// acknowledged event of the activity is in MySQL.
	Events EventLog
	// Observe, when set, is told about every cycle.
	Observe func(Report, time.Duration, error)

	gate loggate.Gate
}

// Locker takes a named lock of an activity.
type Locker interface {
	Lock(ctx context.Context, activityID int64, name string, ttl time.Duration) (unlock func(), ok bool, err error)
}

// EventLog is the participation event log (Kafka).
type EventLog interface {
	// WaitCaughtUp waits until every event of the activity acknowledged
	// before the call has been written into MySQL.
	WaitCaughtUp(ctx context.Context, activityID int64) error
}

// How long a rebuild may wait for the consumer, and hold its lock.
const (
	catchUpTimeout = 30 * time.Second
	rebuildLockTTL = 2 * catchUpTimeout
)

// Report says what one cycle did.
type Report struct {
	Activities int   // live activities looked at
	Closed     int   // activities closed because their time was over
	Rebuilt    int   // activities whose lost Redis state was rebuilt from MySQL
	Reaped     int   // claims given back after their lease ran out
	Snapshots  int   // stock snapshots written
	Valid      int   // records settled valid
	Void       int   // records settled void
	Pending    int   // records left pending (their claims are in flight)
	InFlight   int64 // claims in flight over the live activities
	// Drift is issued tokens minus valid records over the live activities:
	// what MySQL has still to catch up with.
	Drift int64
}

// Run runs a cycle every Interval until ctx ends.
func (r *Reconciler) Run(ctx context.Context) {
	every := r.Interval
	if every <= 0 {
		every = DefaultInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		rep, err := r.Cycle(ctx)
		if r.Observe != nil {
			r.Observe(rep, time.Since(start), err)
		}
		if err != nil && ctx.Err() == nil && r.gate.Open() {
			r.Log.Warn("reconcile cycle failed; retrying next cycle", "err", err)
		}
	}
}

// Cycle runs the job once.
func (r *Reconciler) Cycle(ctx context.Context) (Report, error) {
	var rep Report
	acts, err := r.Repo.LiveActivities(ctx)
	if err != nil {
		return rep, err
	}
	rep.Activities = len(acts)
	var errs []error
	for _, a := range acts {
		errs = append(errs, r.activity(ctx, a, &rep))
	}
	errs = append(errs, r.settle(ctx, &rep))
	return rep, errors.Join(errs...)
}

// activity closes a over its time, reaps its expired claims and writes its
// stock snapshot when it changed.
func (r *Reconciler) activity(ctx context.Context, a *activity.Activity, rep *Report) error {
	now := time.Now()
	if a.State == activity.StateOpen && !now.Before(a.EndAt) {
		_, err := r.Svc.Transition(ctx, a.ID, activity.ActionClose)
		switch {
		case err == nil:
			rep.Closed++
		case !errors.Is(err, activity.ErrInvalidState):
			return err
		}
	}
	for {
		n, err := r.Slots.Reap(ctx, a.ID, reapBatch)
		if err != nil {
			return err
		}
		rep.Reaped += n
		if n < reapBatch {
			break
		}
	}
	c, ok, err := r.Slots.Counters(ctx, a.ID)
	if err != nil {
		return err
	}
	if !ok {
		rebuilt, err := r.rebuild(ctx, a)
		if rebuilt {
			rep.Rebuilt++
		}
		return err
	}
	rep.InFlight += c.InFlight
	recorded, err := r.Repo.CountRecorded(ctx, a.ID)
	if err != nil {
		return err
	}
	rep.Drift += c.Issued - recorded
	surplus := a.Stock - c.Claimed
	if surplus == a.Surplus && a.ReconciledAt != nil {
		return nil
	}
	if err := r.Repo.SetSurplus(ctx, a.ID, surplus, now); err != nil {
		return err
	}
	rep.Snapshots++
	return nil
}

// settle marks pending records valid when their claim was confirmed and void
// when it was given back, then lets Redis forget the confirmed claims.
func (r *Reconciler) settle(ctx context.Context, rep *Report) error {
	n, err := r.Svc.SettlePending(ctx, settleBatch)
	rep.Valid += n.Valid
	rep.Void += n.Void
	rep.Pending += n.Pending
	return err
}

// rebuild makes the Redis state of an activity that Redis lost (a restart
// without persistence, FLUSHDB, a failover to an empty replica) again from
// MySQL. Until it is done, claims answer 503: the activity is never sold from
// zero again. It first waits until every acknowledged event of the activity
// is in MySQL, then starts a new epoch: records of earlier epochs still
// pending count as valid (their claims may have been answered 200), and any
// that arrive later are void, so a claim made before the loss can neither be
// lost nor count twice. The state comes back on the next cycle's snapshot.
func (r *Reconciler) rebuild(ctx context.Context, a *activity.Activity) (bool, error) {
	if a.State != activity.StateOpen && a.State != activity.StateClosed {
		return false, nil
	}
	if r.Locks == nil {
		return false, nil
	}
	unlock, ok, err := r.Locks.Lock(ctx, a.ID, "rebuild", rebuildLockTTL)
	if err != nil || !ok {
		return false, err // another instance is at it
	}
	defer unlock()
	// Another instance may have finished just before we took the lock.
	if _, ok, err := r.Slots.Counters(ctx, a.ID); err != nil || ok {
		return false, err
	}
	if r.Events != nil {
		wctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
		err := r.Events.WaitCaughtUp(wctx, a.ID)
		cancel()
		if err != nil {
			return false, err
		}
	}
	fresh, valid, err := r.Repo.BeginRebuild(ctx, a.ID)
	if err != nil {
		return false, err
	}
	if err := r.Slots.Rebuild(ctx, fresh, valid); err != nil {
		return false, err
	}
	r.Log.Warn("rebuilt an activity's lost Redis state from MySQL",
		"activity", a.ID, "epoch", fresh.Epoch, "valid", len(valid))
	return true, nil
}
