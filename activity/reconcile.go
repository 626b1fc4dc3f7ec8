package activity

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
)

// EventLog is the participation event log (Kafka).
type EventLog interface {
	// WaitCaughtUp waits until every event of the activity acknowledged
	// before the call has been written into MySQL.
	WaitCaughtUp(ctx context.Context, activityID int64) error
}

// UseEventLog makes a rebuild wait for the event log: with the events still
// on their way, a rebuild could not tell which tokens were handed out.
func (s *Service) UseEventLog(e EventLog) { s.events = e }

// ReconcileReport says what one reconcile cycle did. The numbers of the
// activities cover those this instance worked on: another instance's lease
// made it leave the others (Elsewhere) alone.
type ReconcileReport struct {
	Activities int   // live activities looked at
	Elsewhere  int   // live activities whose work another instance holds
	Closed     int   // activities closed because their time was over
	Opened     int   // approved activities with autoOpen opened as their time came
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

const (
	reapBatch   = 1000
	settleBatch = 5000
	// How long a rebuild may wait for the event log, and hold the lock that
	// keeps other instances from rebuilding the same activity.
	catchUpTimeout = 30 * time.Second
	rebuildLockTTL = 2 * catchUpTimeout
)

// DefaultJobLease is how long an instance keeps a share of the periodic
// work without renewing it: a few cycles of the default job interval.
const DefaultJobLease = 3 * time.Second

// SetJobLease names this instance in the job's leases (a random name when
// holder is empty) and sets how long a lease lasts unless the next cycle
// renews it (DefaultJobLease when ttl is not positive). Give it a few job
// intervals: a lease that runs out between two cycles of its holder lets
// another instance do the same work too, which is safe but wasted.
func (s *Service) SetJobLease(holder string, ttl time.Duration) {
	if holder == "" {
		holder = newJobHolder()
	}
	if ttl <= 0 {
		ttl = DefaultJobLease
	}
	s.jobHolder, s.jobLease = holder, ttl
}

func newJobHolder() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// holds takes or renews this instance's lease on the work of scope (an
// activity ID, or 0 for the work of no one activity).
func (s *Service) holds(ctx context.Context, scope int64) (bool, error) {
	return s.slots.Lease(ctx, scope, s.jobHolder, s.jobLease)
}

// Reconcile runs one cycle of the periodic work: for each live activity it
// closes it when its time is over (by the slot store's clock, the one its
// claims go by), gives back the claims whose lease ran out, rebuilds a state
// the slot store lost and writes the stock snapshot when it changed; then it
// settles pending records, opens the activities whose schedule says so and
// forgets finished activities.
//
// Every instance runs it, but each activity's work is done by the one
// instance holding the activity's lease in the slot store, renewed every
// cycle, and the settling and forgetting by the one holding the lease of no
// one activity; when a holder stops (it died, or its cycle outlasted the
// lease) another instance takes the lease over at its next cycle. So the
// job's cost does not grow with the number of instances, but for the one
// query of the live activities each makes. Two instances at the same work
// for a moment are safe: each step is atomic in Redis or idempotent in
// MySQL. While MySQL is down, expired claims are given back all the same,
// for the activities Redis knows.
func (s *Service) Reconcile(ctx context.Context) (ReconcileReport, error) {
	var rep ReconcileReport
	listed, lerr := s.slots.Listed(ctx)
	acts, err := s.repo.LiveActivities(ctx, s.retention)
	if err != nil {
		// Reaped by every instance that cannot read MySQL, without the
		// leases: an instance whose MySQL fails must not keep the work of
		// the activities from the others that can.
		for _, id := range listed {
			n, rerr := s.reap(ctx, id)
			rep.Reaped += n
			err = errors.Join(err, rerr)
		}
		return rep, errors.Join(err, lerr)
	}
	rep.Activities = len(acts)
	// Opening by schedule comes first, with the lease of no one activity
	// (renewed below): a rebuild in the loop may take long.
	var errs []error
	if mine, err := s.holds(ctx, 0); mine || err != nil {
		opened, oerr := s.openDue(ctx)
		rep.Opened = opened
		errs = append(errs, err, oerr)
	}
	// Open sales first: after a Redis restart every activity is rebuilt,
	// and a closed one must not keep an open one waiting.
	slices.SortStableFunc(acts, func(a, b *Activity) int {
		return cmp.Compare(stateRank(a.State), stateRank(b.State))
	})
	errs = append(errs, lerr)
	for _, a := range acts {
		mine, err := s.holds(ctx, a.ID)
		if !mine {
			rep.Elsewhere++
			errs = append(errs, err)
			continue
		}
		if err := s.reconcile(ctx, a, &rep); err != nil {
			// Give the work back, for another instance to try at its next
			// cycle: a fault of this instance's must not keep it.
			_, _ = s.slots.Lease(ctx, a.ID, s.jobHolder, 0)
			errs = append(errs, err)
		}
	}
	// The lease of no one activity lives on one master of a cluster; with
	// that master down, every instance settles, as safe as one.
	mine, err := s.holds(ctx, 0)
	if !mine && err == nil {
		return rep, errors.Join(errs...)
	}
	errs = append(errs, err, s.forgetFinished(ctx, listed, acts))
	n, err := s.SettlePending(ctx, settleBatch)
	rep.Valid, rep.Void, rep.Pending = n.Valid, n.Void, n.Pending
	errs = append(errs, err)
	return rep, errors.Join(errs...)
}

func stateRank(s State) int {
	if s == StateOpen {
		return 0
	}
	return 1
}

// forgetFinished deletes the Redis state of the activities Redis lists
// that are over: closed in MySQL longer than the retention ago, nothing in
// flight, every token issued recorded valid in MySQL and no record pending.
// Anything else listed but not live (an open whose preheat was answered
// with an error although it landed) is left alone.
func (s *Service) forgetFinished(ctx context.Context, listed []int64, live []*Activity) error {
	var gone []int64
	for _, id := range listed {
		if slices.ContainsFunc(live, func(a *Activity) bool { return a.ID == id }) {
			continue
		}
		over, err := s.over(ctx, id)
		if err != nil {
			return err
		}
		if !over {
			continue
		}
		if err := s.slots.Drop(ctx, id); err != nil {
			return err
		}
		gone = append(gone, id)
	}
	return s.slots.Unlist(ctx, gone)
}

// over reports whether an activity's sale is over and settled for good, so
// that its Redis state may go: closed longer than the retention ago, no
// claim in flight, its issued tokens all recorded valid, no record pending.
// An activity MySQL does not know (a database made again) is over too.
// Before it says so it writes the final stock snapshot, which the stats
// read once the Redis state is gone.
func (s *Service) over(ctx context.Context, id int64) (bool, error) {
	a, err := s.repo.Activity(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if a.State != StateClosed || s.now().Sub(a.UpdatedAt) < s.retention {
		return false, nil
	}
	s.slots.Learn(a)
	c, ok, err := s.slots.Counters(ctx, id)
	if err != nil || ok && (c.InFlight > 0 || c.Issued != a.Recorded) {
		return false, err
	}
	if pending, err := s.repo.HasPending(ctx, id); err != nil || pending {
		return false, err
	}
	// The last cycle that wrote the snapshot may have come before a claim
	// was given back, or the activity may have left the live ones before
	// any cycle saw its last claims.
	if surplus := a.Stock - c.Claimed; ok && (surplus != a.Surplus || a.ReconciledAt == nil) {
		if err := s.repo.SetSurplus(ctx, id, a.Stock, surplus, s.now()); err != nil {
			return false, err
		}
	}
	// And the summary its last numbers make, before they go.
	if err := s.summarize(ctx, a, c, ok); err != nil {
		return false, err
	}
	return true, nil
}

// reap gives back every claim of an activity whose lease ran out.
func (s *Service) reap(ctx context.Context, id int64) (int, error) {
	total := 0
	for {
		n, err := s.slots.Reap(ctx, id, reapBatch)
		total += n
		if err != nil || n < reapBatch {
			return total, err
		}
	}
}

// reconcile closes a over its time, reaps its expired claims, rebuilds its
// state if the slot store lost it and writes its stock snapshot when it
// changed.
func (s *Service) reconcile(ctx context.Context, a *Activity, rep *ReconcileReport) error {
	s.slots.Learn(a)
	if a.State == StateOpen {
		now, err := s.slots.Now(ctx, a.ID)
		if err != nil {
			return err
		}
		if !now.Before(a.EndAt) {
			_, err := s.Transition(WithActor(ctx, scheduleActor), a.ID, ActionClose)
			switch {
			case err == nil:
				rep.Closed++
			case !errors.Is(err, ErrInvalidState):
				return err
			}
		}
	}
	n, err := s.reap(ctx, a.ID)
	rep.Reaped += n
	if err != nil {
		return err
	}
	c, ok, err := s.slots.Counters(ctx, a.ID)
	if err != nil {
		return err
	}
	if !ok {
		rebuilt, err := s.rebuild(ctx, a)
		if rebuilt {
			rep.Rebuilt++
		}
		return err
	}
	rep.InFlight += c.InFlight
	rep.Drift += c.Issued - a.Recorded
	if err := s.summarize(ctx, a, c, true); err != nil {
		return err
	}
	surplus := a.Stock - c.Claimed
	if surplus == a.Surplus && a.ReconciledAt != nil {
		return nil
	}
	if err := s.repo.SetSurplus(ctx, a.ID, a.Stock, surplus, s.now()); err != nil {
		return err
	}
	rep.Snapshots++
	return nil
}

// rebuild makes the Redis state of an activity that Redis lost (a restart
// without persistence, FLUSHDB, a failover to an empty replica) or that
// Redis brought back from an earlier moment (a restart from an RDB snapshot
// or an AOF, a failover to a replica that lagged) again from MySQL. Until it
// is done, claims answer 503: the activity is never sold from zero or from
// stale counters. It first waits until every acknowledged event of the
// activity is in MySQL, then, under the activity's state lock (which opens
// and closes take too), starts a new epoch: the pending records of the lost
// epoch are settled by DecideLost, and the state is made from the valid
// records, with the tokens each user holds and the idempotency answers. A
// claim made before the loss can then neither be lost nor count twice: its
// late confirm fails (the epoch changed) and its late event is void.
func (s *Service) rebuild(ctx context.Context, a *Activity) (bool, error) {
	if a.State != StateOpen && a.State != StateClosed {
		return false, nil
	}
	l, err := s.slots.Lock(ctx, a.ID, "rebuild", rebuildLockTTL)
	if err != nil || l == nil {
		return false, err // another instance is at it
	}
	defer l.Release()
	// Another instance may have finished just before we took the lock.
	if _, ok, err := s.slots.Counters(ctx, a.ID); err != nil || ok {
		return false, err
	}
	if err := s.caughtUp(ctx, a.ID); err != nil {
		return false, err
	}
	state, err := s.lockState(ctx, a.ID)
	if err != nil {
		return false, err
	}
	defer state.Release()
	// An open whose preheat landed while we waited made a live state.
	if _, ok, err := s.slots.Counters(ctx, a.ID); err != nil || ok {
		return false, err
	}
	if a.Shards > 1 {
		// One lost shard is rebuilt alone, if it can be, while the others
		// go on selling.
		now, err := s.repo.Activity(ctx, a.ID)
		if err != nil {
			return false, err
		}
		if now.State != StateOpen && now.State != StateClosed {
			return false, nil
		}
		one, err := s.slots.BeginShardRebuild(ctx, now, now.Epoch+1, state)
		if err != nil {
			return false, err
		}
		if one != nil {
			defer one.Done()
			return s.rebuildShard(ctx, now, one, state)
		}
		// The shards still live go on confirming until they are fenced:
		// the wait is over again after it, or a token they confirmed
		// meanwhile would come too late for the new epoch.
		if err := s.slots.Fence(ctx, a); err != nil {
			return false, err
		}
		if err := s.caughtUp(ctx, a.ID); err != nil {
			return false, err
		}
	}
	fresh, err := s.repo.BeginRebuild(ctx, a.ID, DecideLost)
	if err != nil {
		return false, err
	}
	if fresh.State != StateOpen && fresh.State != StateClosed {
		return false, nil
	}
	// The valid records are read and replayed a page at a time, so a
	// rebuild's memory does not grow with the sale. Fenced by the state
	// lock: if Redis lost it (a restart) or it ran out, another rebuild may
	// be at it, and this one writes nothing more.
	pages := &validPages{repo: s.repo, id: a.ID, size: s.rebuildPage}
	if err := s.slots.Rebuild(ctx, fresh, pages.next, state); err != nil {
		return false, fmt.Errorf("rebuild activity %d: %w", a.ID, err)
	}
	s.log.Warn("rebuilt an activity's lost Redis state from MySQL",
		"activity", a.ID, "epoch", fresh.Epoch, "valid", pages.read)
	return true, nil
}

// rebuildShard rebuilds the one lost shard of a sharded activity, its
// other shards held from moving numbers (one): the pending records of the
// shard's users are settled, those on numbers that left it void, the
// shard's epoch moves on, and its state is made again from the valid
// records of its users with the numbers that did not leave it. The other
// shards go on selling, and confirming, all along: their records are not
// the shard's, and none of the numbers it is rebuilt with can be claimed
// on them.
func (s *Service) rebuildShard(ctx context.Context, a *Activity, one ShardRebuild, state *Lock) (bool, error) {
	j := one.Shard()
	fresh, err := s.repo.BeginShardRebuild(ctx, a.ID, j, one.Left, DecideLost)
	if err != nil {
		return false, err
	}
	if fresh.ShardEpoch(j) != a.Epoch+1 {
		// Only a rebuild, under the state lock we hold, moves the epoch.
		return false, fmt.Errorf("rebuild shard %d of activity %d: epoch %d, not %d", j, a.ID, fresh.ShardEpoch(j), a.Epoch+1)
	}
	pages := &validPages{repo: s.repo, id: a.ID, size: s.rebuildPage}
	if err := one.Rebuild(ctx, fresh, pages.next); err != nil {
		return false, fmt.Errorf("rebuild shard %d of activity %d: %w", j, a.ID, err)
	}
	s.log.Warn("rebuilt one shard's lost Redis state from MySQL; the other shards went on",
		"activity", a.ID, "shard", j, "epoch", fresh.ShardEpoch(j), "valid", pages.read)
	return true, nil
}

// caughtUp waits until every acknowledged event of an activity is in
// MySQL.
func (s *Service) caughtUp(ctx context.Context, id int64) error {
	if s.events == nil {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	defer cancel()
	return s.events.WaitCaughtUp(wctx, id)
}

// DefaultRebuildPage is how many valid records a rebuild reads and replays
// at a time.
const DefaultRebuildPage = 5000

// SetRebuildPage sets how many valid records a rebuild reads at a time
// (DefaultRebuildPage when n is not positive).
func (s *Service) SetRebuildPage(n int) {
	if n <= 0 {
		n = DefaultRebuildPage
	}
	s.rebuildPage = n
}

// validPages reads an activity's valid records a page at a time, in slot
// order.
type validPages struct {
	repo       Repository
	id         int64
	size       int
	afterSlot  int64
	afterToken string
	read       int
}

func (v *validPages) next(ctx context.Context) ([]Participation, error) {
	ps, err := v.repo.ValidParticipations(ctx, v.id, v.afterSlot, v.afterToken, v.size)
	if err != nil || len(ps) == 0 {
		return nil, err
	}
	last := ps[len(ps)-1]
	v.afterSlot, v.afterToken = last.Slot, last.Token
	v.read += len(ps)
	return ps, nil
}
