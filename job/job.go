// Package job runs the service's periodic work on a ticker: each tick is
// one activity.Service.Reconcile cycle, which gives back claims whose lease
// ran out, rebuilds lost Redis state, settles participation records, writes
// each live activity's stock snapshot into MySQL and closes activities
// whose time is over. The rules live in the activity package, and so do the
// leases that give each activity's work to one instance at a time.
package job

import (
	"context"
	"log/slog"
	"time"

	"seckill/activity"
	"seckill/internal/loggate"
)

// DefaultInterval is how often the job runs.
const DefaultInterval = time.Second

// ReconcileService runs one reconcile cycle. *activity.Service is one.
type ReconcileService interface {
	Reconcile(ctx context.Context) (activity.ReconcileReport, error)
}

// Reconciler is the periodic job. Every instance runs one; the cycles of
// several instances share the work out between them (see
// activity.Service.Reconcile).
type Reconciler struct {
	Svc      ReconcileService
	Interval time.Duration
	Log      *slog.Logger
	// Observe, when set, is told about every cycle.
	Observe func(activity.ReconcileReport, time.Duration, error)

	gate loggate.Gate
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
func (r *Reconciler) Cycle(ctx context.Context) (activity.ReconcileReport, error) {
	return r.Svc.Reconcile(ctx)
}
