package activity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"seckill/internal/loggate"
)

// Repository keeps activities and participation records in the system of
// record (MySQL).
type Repository interface {
	// CreateActivity stores a new activity and sets its ID and timestamps.
	CreateActivity(ctx context.Context, a *Activity) error
	// Activity returns one activity, or ErrNotFound.
	Activity(ctx context.Context, id int64) (*Activity, error)
	// Activities lists the activities f selects, in its order.
	Activities(ctx context.Context, f ListFilter) ([]*Activity, error)
	// CountActivities counts the activities f selects, its limit and
	// offset aside.
	CountActivities(ctx context.Context, f ListFilter) (int64, error)
	// UpdateActivity writes a's editable fields if the stored activity is
	// still in state from; it returns ErrInvalidState when it is not and
	// ErrNotFound when there is no such activity.
	UpdateActivity(ctx context.Context, a *Activity, from State) error
	// SetState moves an activity from one state to another, atomically; it
	// returns ErrInvalidState when the stored state is not from.
	SetState(ctx context.Context, id int64, from, to State) error
	// Participation returns the participation record of a token, whatever
	// its status, or ErrNotFound.
	Participation(ctx context.Context, token string) (*Participation, error)
	// UserParticipations returns the valid participation records of a user
	// in an activity.
	UserParticipations(ctx context.Context, activityID int64, userID string) ([]Participation, error)
	// RecordBatch stores participations, each with its Status (pending when
	// empty); a token stored before keeps its row, except that a pending row
	// takes a settled status.
	RecordBatch(ctx context.Context, ps []Participation) error
	// HasPending reports whether an activity has records not settled yet.
	HasPending(ctx context.Context, id int64) (bool, error)
	// PendingParticipations returns up to limit records not settled yet,
	// oldest first.
	PendingParticipations(ctx context.Context, limit int) ([]Participation, error)
	// SettleParticipations marks pending records valid or void.
	SettleParticipations(ctx context.Context, valid, void []Participation) error
	// LiveActivities returns the activities whose stock may still move: open
	// ones, and those closed less than closedWithin ago.
	LiveActivities(ctx context.Context, closedWithin time.Duration) ([]*Activity, error)
	// SetSurplus writes an activity's stock snapshot, stock minus claimed,
	// if its stock is still stock: a stock changed since it was read
	// moved the snapshot itself.
	SetSurplus(ctx context.Context, id, stock, surplus int64, at time.Time) error
	// BeginRebuild starts a new epoch for an activity whose Redis state was
	// lost, in one transaction: the pending records of the lost epoch are
	// handed to decide with every record of that epoch that shares a slot
	// or a user with one of them, and settled as it says; pending records of
	// older epochs are void; the activity with its new epoch is returned.
	// Records of an earlier epoch that arrive later are settled void.
	BeginRebuild(ctx context.Context, id int64, decide func([]Participation) Decision) (*Activity, error)
	// BeginShardRebuild is BeginRebuild for one lost shard of a sharded
	// activity: the pending records of its users only are settled, those on
	// a number that left the shard (left) void, and only the shard's epoch
	// moves on (to the activity's next).
	BeginShardRebuild(ctx context.Context, id int64, shard int, left func(slot int64) bool, decide func([]Participation) Decision) (*Activity, error)
	// ValidParticipations returns up to limit valid records of an activity
	// in slot order, from the one after the given slot and token on.
	ValidParticipations(ctx context.Context, id, afterSlot int64, afterToken string, limit int) ([]Participation, error)
	// Redeem sets the RedeemedAt of a valid record that has none, at most
	// once whatever runs at the same time, and returns the record. It
	// returns a *RedeemedError for a record redeemed before and ErrNotFound
	// for no valid record of the token.
	Redeem(ctx context.Context, token string, at time.Time) (*Participation, error)
	// SetStock writes the stock of an activity in state from, and moves its
	// stock snapshot by as much; it returns ErrInvalidState when the stored
	// state is not from.
	SetStock(ctx context.Context, id int64, from State, stock int64) error
	// SetAutoOpen writes the AutoOpen of an activity in state from alone;
	// it returns ErrInvalidState when the stored state is not from.
	SetAutoOpen(ctx context.Context, id int64, from State, on bool) error
	// SetSummary writes the summary of a closed activity; an activity in
	// another state is left alone.
	SetSummary(ctx context.Context, id int64, m Summary) error
	// DueActivities returns up to 100 approved activities with AutoOpen
	// whose beginAt is at or before by and whose endAt is after endAfter,
	// soonest first.
	DueActivities(ctx context.Context, by, endAfter time.Time) ([]*Activity, error)
}

// Claim is one user's hold on one numbered slot of an activity, from the
// moment the slot store hands the slot out until it is confirmed (issued for
// good) or released (sold again). A claim is a lease: if it is neither
// confirmed nor released in time, the slot store gives it back.
type Claim struct {
	ActivityID int64
	UserID     string
	ClaimID    string // unique per claim; the value of the slot's lock
	// IdempotencyKey, when set, makes a retry of the same join by the same
	// user find this claim instead of taking another slot.
	IdempotencyKey string
	Slot           int64 // set by SlotStore.Claim
	Epoch          int64 // set by SlotStore.Claim: the epoch of the activity's state
	// Seq and Held are set by SlotStore.Claim: the claim's number in the
	// epoch's claim sequence, and the numbers of the claims of this epoch
	// the user held before it.
	Seq  int64
	Held []int64
	// Shard is set by SlotStore.Claim: the shard of a sharded activity that
	// holds the claim (the user's home shard), 0 for one shard.
	Shard int
}

// SlotStore is the slot engine (Redis): the live stock of open activities.
type SlotStore interface {
	// Preheat loads an activity's stock into the store and opens it for
	// claims.
	Preheat(ctx context.Context, a *Activity) error
	// Close stops claims on an activity at once.
	Close(ctx context.Context, activityID int64) error
	// Claim takes a free slot for c.UserID and sets c.Slot. It returns
	// ErrSoldOut, ErrLimitReached, ErrNotOpen, or ErrUnavailable when the
	// store cannot answer or has lost the activity's state.
	Claim(ctx context.Context, c *Claim) error
	// Confirm turns a claim into an issued slot issued at the given time.
	// It returns ErrLeaseLost when the claim is no longer held.
	Confirm(ctx context.Context, c Claim, issuedAt time.Time) error
	// Release gives a claim back so the slot is sold again. Releasing a claim
	// that is no longer held does nothing.
	Release(ctx context.Context, c Claim) error
	// Reap gives back up to limit claims of an activity whose lease ran out
	// and returns how many it gave back.
	Reap(ctx context.Context, activityID int64, limit int) (int, error)
	// Settle tells what became of the claims of pending participations of
	// one activity: one Outcome each, in order.
	Settle(ctx context.Context, activityID int64, ps []Participation) ([]Outcome, error)
	// Forget drops what the store keeps of confirmed claims once their
	// records are valid in MySQL, but for what later claims need (the
	// user's count, the slot taken).
	Forget(ctx context.Context, activityID int64, ps []Participation) error
	// Confirmed returns a confirmed claim whose record is not settled yet,
	// or false.
	Confirmed(ctx context.Context, activityID int64, claimID string) (*Participation, bool, error)
	// Counters returns the live numbers of an activity; the bool is false
	// when the store holds no state for it.
	Counters(ctx context.Context, activityID int64) (Counters, bool, error)
	// Rebuild replaces an activity's state with one made from its valid
	// participations, which next hands over a page at a time (an empty page
	// at the end), under a.Epoch, and opens it again if a is open. It writes
	// only while held, the activity's state lock, is still held (renewing
	// it as it goes), and fails otherwise.
	Rebuild(ctx context.Context, a *Activity, next func(context.Context) ([]Participation, error), held *Lock) error
	// Lease takes or renews holder's lease on the periodic work of an
	// activity (scope its ID) or on the work of no one activity (scope 0)
	// for ttl, and reports whether holder has it now. A ttl of zero gives
	// holder's lease back (and reports false).
	Lease(ctx context.Context, scope int64, holder string, ttl time.Duration) (bool, error)
	// Lock takes a named lock of an activity for ttl; it returns nil when
	// another holder has it.
	Lock(ctx context.Context, activityID int64, name string, ttl time.Duration) (*Lock, error)
	// Now returns the time of the store's clock for the activity: the clock
	// its claims go by for beginAt and endAt.
	Now(ctx context.Context, activityID int64) (time.Time, error)
	// Listed returns the activities the store holds a state for, so that
	// their leases can be reaped while the repository is down; Unlist drops
	// activities that are no longer live from it.
	Listed(ctx context.Context) ([]int64, error)
	Unlist(ctx context.Context, activityIDs []int64) error
	// Drop deletes every key of an activity: its sale is over and settled.
	Drop(ctx context.Context, activityID int64) error
	// SetStock changes the stock of an activity's live state, atomically
	// with its claims. It returns a *StockConflictError when more slots are
	// claimed (issued or in flight) than stock, and ErrNoState.
	SetStock(ctx context.Context, activityID, stock int64) error
	// Preheated reports whether the store keeps a state made for activity
	// a: it was preheated once (an open that failed after its preheat
	// landed leaves one).
	Preheated(ctx context.Context, a *Activity) (bool, error)
	// Learn tells the store an activity as MySQL has it: how many shards
	// its state is spread over, which the store otherwise reads from Redis
	// (where that record may be lost with its master).
	Learn(a *Activity)
	// Fence makes the state of an activity spread over several shards not
	// live on any of them, so that nothing more is claimed or confirmed in
	// its epoch, before a rebuild of them all waits for the events in
	// flight. It does nothing for one shard.
	Fence(ctx context.Context, a *Activity) error
	// BeginShardRebuild begins the rebuild of the one shard of sharded
	// activity a whose state was lost, while the others go on selling:
	// until the rebuild's Done they move no numbers, and the numbers the
	// lost shard carved before its loss are never taken; epoch is the one
	// the shard is rebuilt in. It returns nil when the shard cannot be
	// rebuilt alone (more than one lost), and the whole activity is
	// rebuilt. held is the activity's state lock; a is read under it.
	BeginShardRebuild(ctx context.Context, a *Activity, epoch int64, held *Lock) (ShardRebuild, error)
}

// A ShardRebuild is the rebuild of one lost shard of a sharded activity
// (SlotStore.BeginShardRebuild).
type ShardRebuild interface {
	// Shard is the number of the lost shard.
	Shard() int
	// Left reports whether a slot number left the lost shard: another shard
	// owns it, or it is on its way to one. A pending claim of the lost
	// shard on it was given back before it left.
	Left(slot int64) bool
	// Rebuild makes the shard's state again from the valid participations,
	// which next hands over a page at a time (an empty page at the end), in
	// a.ShardEpoch(Shard()), with the numbers that did not leave it.
	Rebuild(ctx context.Context, a *Activity, next func(context.Context) ([]Participation, error)) error
	// Done lets the shards move numbers again.
	Done()
}

// Lock is a named lock of an activity, held by this instance until Release.
// Token is the lock's value: a write fenced by the lock checks that it is
// still there.
type Lock struct {
	Name, Token string
	TTL         time.Duration
	Release     func()
}

// Outcome is what became of a claim, as the slot store knows it.
type Outcome int

// The outcomes of a claim.
const (
	OutcomeInFlight  Outcome = iota // neither confirmed nor given back yet
	OutcomeConfirmed                // issued: its record is valid
	OutcomeGivenBack                // released or reaped: its record is void
	OutcomeUnknown                  // the store lost the activity's state
)

// Recorder makes a participation durable before its token is handed out.
// Records arrive in MySQL as pending; the reconcile job settles each one as
// valid (its claim was confirmed) or void (its claim was given back), so a
// record can never turn into a second valid token, whatever the order of
// record, confirm, crash, reap and consume.
type Recorder interface {
	// Record durably records a participation. Once it returns nil the record
	// reaches MySQL even if this process dies.
	Record(ctx context.Context, p Participation) error
}

// Service runs activities: the admin life cycle and the join path.
type Service struct {
	repo     Repository
	slots    SlotStore
	recorder Recorder
	events   EventLog
	// retention is how long a closed activity stays live (SetRetention).
	retention time.Duration
	// rebuildPage is how many valid records a rebuild reads at a time.
	rebuildPage int
	// jobHolder names this instance in the job's leases; jobLease is how
	// long a lease lasts unless renewed (SetJobLease).
	jobHolder string
	jobLease  time.Duration
	signer    *Signer
	log       *slog.Logger
	now       func() time.Time
	noStates  noStateCache
	logGate   loggate.Gate
	// tally counts the joins of this instance, sales keeps them (UseTally);
	// reads keeps the last MySQL read of each activity (Inspect).
	tally *Tally
	sales SaleCounters
	reads reads
	// soldOut maps an activity ID to the time (unix ns) until which this
	// instance answers its joins sold out without asking Redis.
	soldOut sync.Map
	// ObserveStage, when set, is told how long each stage of a join that
	// got as far took: StageClaim, StageRecord, StageConfirm.
	ObserveStage func(stage string, d time.Duration)
}

// The stages of a join, as ObserveStage names them: the claim of a slot;
// the token signed and the record acknowledged by the recorder (the
// broker); the confirmation of the claim.
const (
	StageClaim   = "claim"
	StageRecord  = "record"
	StageConfirm = "confirm"
)

// observe tells ObserveStage how long stage took since start, and returns
// the time now.
func (s *Service) observe(stage string, start time.Time) time.Time {
	if s.ObserveStage == nil {
		return start
	}
	now := time.Now()
	s.ObserveStage(stage, now.Sub(start))
	return now
}

// soldOutFor is how long an instance trusts a sold-out answer from Redis. A
// slot given back after the sell-out (a failed join, a reaped lease) is
// offered again at most this much later.
const soldOutFor = 200 * time.Millisecond

// NewService returns a Service over its dependencies.
func NewService(repo Repository, slots SlotStore, recorder Recorder, signer *Signer, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	s := &Service{repo: repo, slots: slots, recorder: recorder, signer: signer, log: log, now: time.Now,
		retention: DefaultRetention, rebuildPage: DefaultRebuildPage, jobHolder: newJobHolder(), jobLease: DefaultJobLease}
	s.sales, _ = slots.(SaleCounters)
	return s
}

// Create stores a new activity in state draft. It returns a
// *ValidationError (matching ErrInvalid) naming the first bad field.
func (s *Service) Create(ctx context.Context, f Fields) (*Activity, error) {
	return s.create(ctx, f, 0)
}

// create is Create of a duplicate of activity duplicateOf when it is not 0.
func (s *Service) create(ctx context.Context, f Fields, duplicateOf int64) (*Activity, error) {
	a := &Activity{PerUserLimit: 1, State: StateDraft, DuplicateOf: duplicateOf}
	if err := f.apply(a); err != nil {
		return nil, err
	}
	if actor, ok := ActorOf(ctx); ok {
		a.CreatedBy, a.UpdatedBy = actor.Name, actor.Name
	}
	a.Surplus = a.Stock
	if err := s.repo.CreateActivity(ctx, a); err != nil {
		return nil, err
	}
	return a, nil
}

// Duplicate stores a new draft with the description, stock, per-user
// limit and times of activity id, autoOpen off, named name, or when name
// is nil the original's name with " (copy)", cut to MaxNameLen
// characters. It returns ErrNotFound, or a *ValidationError for a bad name.
func (s *Service) Duplicate(ctx context.Context, id int64, name *string) (*Activity, error) {
	orig, err := s.repo.Activity(ctx, id)
	if err != nil {
		return nil, err
	}
	n := orig.Name + " (copy)"
	if r := []rune(n); len(r) > MaxNameLen {
		n = string(r[:MaxNameLen])
	}
	if name != nil {
		n = *name
	}
	off := false
	a, err := s.create(ctx, Fields{Name: &n, Description: &orig.Description, Stock: &orig.Stock,
		PerUserLimit: &orig.PerUserLimit, BeginAt: &orig.BeginAt, EndAt: &orig.EndAt, AutoOpen: &off, Shards: &orig.Shards}, id)
	if err != nil {
		return nil, err
	}
	a.DuplicateOf = 0
	return a, nil
}

// Update edits a draft activity; of an approved one it changes AutoOpen
// alone. It returns ErrInvalidState for any other edit of an activity that
// is no longer a draft, ErrNotFound, or a *ValidationError.
func (s *Service) Update(ctx context.Context, id int64, f Fields) (*Activity, error) {
	a, err := s.repo.Activity(ctx, id)
	if err != nil {
		return nil, err
	}
	actor, audited := ActorOf(ctx)
	if a.State == StateApproved && f.onlyAutoOpen() {
		if audited && actor.Role != RoleAdmin && actor.Role != RoleOperator {
			return nil, Forbidden("the role %s may not switch autoOpen of an approved activity: an operator does", actor.Role)
		}
		// One column: a stock changed meanwhile is not written back.
		if err := s.repo.SetAutoOpen(ctx, id, StateApproved, *f.AutoOpen); err != nil {
			return nil, err
		}
		return s.repo.Activity(ctx, id)
	}
	if !a.State.Editable() {
		return nil, ErrInvalidState
	}
	if audited {
		if actor.Role != RoleAdmin && actor.Role != RoleEditor {
			return nil, Forbidden("the role %s may not edit a draft: an editor does", actor.Role)
		}
		a.UpdatedBy = actor.Name
	}
	before := *a
	if err := f.apply(a); err != nil {
		return nil, err
	}
	if err := s.checkOpenedOnce(ctx, &before, a.Shards, a.Stock); err != nil {
		return nil, err
	}
	a.Surplus = a.Stock
	if err := s.repo.UpdateActivity(ctx, a, StateDraft); err != nil {
		return nil, err
	}
	return s.repo.Activity(ctx, id)
}

// checkOpenedOnce refuses, once a not-open activity was opened (an open
// that failed after its preheat landed keeps a state in Redis), a change
// of its shards, and a lower of its stock when it is sharded: a layout
// beside the one Redis keeps would sell its numbers again, and the shards
// keep their numbers, as those of an open activity do (a raise is given at
// the next open). A lower below the slots a kept state claimed is refused
// by the next open (Store.Preheat) whatever the shards.
func (s *Service) checkOpenedOnce(ctx context.Context, a *Activity, shards int, stock int64) error {
	if shards == a.Shards && (a.Shards <= 1 || stock >= a.Stock) {
		return nil
	}
	opened, err := s.slots.Preheated(ctx, a)
	switch {
	case err != nil && shards == a.Shards:
		// A lower: the next open refuses it too (Store.Preheat), so
		// Redis being down does not stop the edit.
		return nil
	case err != nil || !opened:
		return err
	case shards != a.Shards:
		return invalid("shards", "cannot change: the activity was opened once and Redis keeps its state for %d shards", a.Shards)
	}
	c, _, err := s.slots.Counters(ctx, a.ID)
	if err != nil {
		return err
	}
	return &StockConflictError{Claimed: c.Claimed, Lowest: a.Stock,
		Reason: "the stock of an activity spread over shards that was opened once can only be raised"}
}

// Get returns an activity, or ErrNotFound.
func (s *Service) Get(ctx context.Context, id int64) (*Activity, error) {
	a, err := s.repo.Activity(ctx, id)
	if err == nil {
		s.reads.put(a, s.now().UTC().Truncate(time.Millisecond))
	}
	return a, err
}

// List returns a page of the activities f selects, in its order, with how
// many it selects in all. It returns a *ValidationError for a bad query or
// order.
func (s *Service) List(ctx context.Context, f ListFilter) (*ActivityPage, error) {
	if n := utf8.RuneCountInString(f.Query); f.Query != "" && (n > MaxNameLen || !utf8.ValidString(f.Query)) {
		return nil, invalid("q", "must be 1 to %d characters", MaxNameLen)
	}
	if !f.Sort.Valid() {
		return nil, invalid("sort", "must be one of created, beginAt, -beginAt")
	}
	list, err := s.repo.Activities(ctx, f)
	if err != nil {
		return nil, err
	}
	at := s.now().UTC().Truncate(time.Millisecond)
	for _, a := range list {
		s.reads.put(a, at)
	}
	total, err := s.repo.CountActivities(ctx, f)
	if err != nil {
		return nil, err
	}
	return &ActivityPage{Activities: list, Total: total}, nil
}

// Stats returns the live numbers of an activity. It returns ErrUnavailable
// when Redis or MySQL cannot answer.
func (s *Service) Stats(ctx context.Context, a *Activity) (*Stats, error) {
	st := &Stats{Surplus: a.Surplus, ReconciledAt: a.ReconciledAt}
	if a.State == StateOpen || a.State == StateClosed {
		c, ok, err := s.slots.Counters(ctx, a.ID)
		if err != nil {
			return nil, err
		}
		switch {
		case ok:
			st.Claimed, st.InFlight, st.Issued = c.Claimed, c.InFlight, c.Issued
			if st.TurnedAway, err = s.turnedAway(ctx, a.ID); err != nil {
				return nil, err
			}
		case a.State == StateClosed:
			// Its Redis state is gone after the retention: MySQL holds the
			// sale's numbers.
			st.Claimed, st.Issued = a.Stock-a.Surplus, a.Recorded
		}
		st.Recorded = a.Recorded
	}
	return st, nil
}

// Remaining returns how many slots of a are still free, as users see it.
func (s *Service) Remaining(ctx context.Context, a *Activity) (int64, error) {
	if a.State != StateOpen && a.State != StateClosed {
		return a.Stock, nil
	}
	c, ok, err := s.slots.Counters(ctx, a.ID)
	if err != nil {
		return 0, err
	}
	if !ok {
		return a.Surplus, nil
	}
	return max(a.Stock-c.Claimed, 0), nil
}

// Transition applies an admin action to an activity and returns it as it is
// afterwards. It returns ErrInvalidState when the state machine forbids the
// action, ErrNotFound, or ErrUnavailable when Redis or MySQL fails.
func (s *Service) Transition(ctx context.Context, id int64, action Action) (*Activity, error) {
	return s.transition(ctx, id, action, nil)
}

// transition is Transition; an open or a close takes place only if check,
// when not nil, accepts the activity as it is under the state lock.
func (s *Service) transition(ctx context.Context, id int64, action Action, check func(*Activity) error) (*Activity, error) {
	a, err := s.repo.Activity(ctx, id)
	if err != nil {
		return nil, err
	}
	next, err := a.State.Next(action)
	if err != nil {
		return nil, err
	}
	if action == ActionOpen || action == ActionClose || action == ActionDraft {
		// Opening and closing change the activity's state in Redis and in
		// MySQL; a rebuild reads the one and writes the other. They take
		// turns, and a return to draft (after which the stock may change)
		// waits for an open in progress.
		l, err := s.lockState(ctx, id)
		if err != nil {
			return nil, err
		}
		defer l.Release()
		if a, err = s.repo.Activity(ctx, id); err != nil {
			return nil, err
		}
		s.slots.Learn(a)
		if next, err = a.State.Next(action); err != nil {
			return nil, err
		}
		if check != nil {
			if err := check(a); err != nil {
				return nil, err
			}
		}
	}
	if err := fourEyes(ctx, a, action); err != nil {
		return nil, err
	}
	switch action {
	case ActionOpen:
		// The state moves first so that two concurrent opens cannot both
		// preheat; a failed preheat moves it back.
		if err := s.repo.SetState(ctx, id, a.State, next); err != nil {
			return nil, err
		}
		// What is preheated is read after the move: the copy read before
		// it may be of an earlier approval (returned to draft, edited and
		// approved again in between), and once open the stock changes only
		// under the state lock this open holds.
		opened, err := s.repo.Activity(ctx, id)
		if err == nil && opened.State != next {
			err = fmt.Errorf("%w: activity %d moved to %s during its open", ErrInvalidState, id, opened.State)
		}
		if err == nil {
			err = s.slots.Preheat(ctx, opened)
		}
		if err != nil {
			rerr := s.repo.SetState(context.WithoutCancel(ctx), id, next, a.State)
			if rerr != nil {
				s.log.Error("open: preheat failed and the state could not be moved back",
					"activity", id, "err", err, "rollbackErr", rerr)
			}
			// A preheat answered with an error may have landed, on every
			// shard or some: its joins stop, as the activity is not open
			// (but for MySQL still saying open: then they go on).
			if rerr == nil && opened != nil && opened.State == next {
				s.slots.Learn(opened)
				if cerr := s.slots.Close(context.WithoutCancel(ctx), id); cerr != nil && s.logGate.Open() {
					s.log.Warn("open: preheat failed and what it may have left could not be closed",
						"activity", id, "err", err, "closeErr", cerr)
				}
			}
			return nil, err
		}
	case ActionClose:
		// Joins stop in Redis first, so a close that fails half way still
		// stops the sale.
		if err := s.slots.Close(ctx, id); err != nil {
			return nil, err
		}
		if err := s.repo.SetState(ctx, id, a.State, next); err != nil {
			return nil, err
		}
	default:
		if err := s.repo.SetState(ctx, id, a.State, next); err != nil {
			return nil, err
		}
	}
	out, err := s.repo.Activity(ctx, id)
	if err != nil || action != ActionClose {
		return out, err
	}
	// The summary as the close finds it; the job brings it up to date once
	// the last counts and records are in.
	c, ok, err := s.slots.Counters(ctx, id)
	if err == nil {
		err = s.summarize(ctx, out, c, ok)
	}
	if err != nil {
		if s.logGate.Open() {
			s.log.Warn("close: the summary could not be written; the job writes it", "activity", id, "err", err)
		}
		return out, nil
	}
	return s.repo.Activity(ctx, id)
}

// fourEyes forbids an approver to approve or refuse a draft they created
// or last edited: another approver does.
func fourEyes(ctx context.Context, a *Activity, action Action) error {
	actor, ok := ActorOf(ctx)
	if !ok || actor.Role != RoleApprover || (action != ActionApprove && action != ActionRefuse) {
		return nil
	}
	switch actor.Name {
	case a.CreatedBy:
		return Forbidden("four eyes: %s created this draft, so another approver must %s it", actor.Name, action)
	case a.UpdatedBy:
		return Forbidden("four eyes: %s last edited this draft, so another approver must %s it", actor.Name, action)
	}
	return nil
}

// Join claims a slot of an activity for a user and returns the participation
// with its token. The token is handed out only after the participation is
// durably recorded and the claim confirmed; every failure after the claim
// gives the slot back before returning. A retry with the idempotencyKey of a
// confirmed join returns its first answer and takes nothing more. It returns
// ErrSoldOut, a *LimitError (ErrLimitReached) listing the tokens the user
// holds, ErrNotOpen, ErrNotFound, a *ValidationError, or ErrUnavailable.
func (s *Service) Join(ctx context.Context, activityID int64, userID, idempotencyKey string) (*Participation, error) {
	if !ValidUserID(userID) {
		return nil, invalid("userId", "must be 1 to %d characters of A-Z a-z 0-9 _ . -", MaxUserIDLen)
	}
	if idempotencyKey != "" && !ValidIdempotencyKey(idempotencyKey) {
		return nil, invalid("Idempotency-Key", "must be 1 to %d characters of A-Z a-z 0-9 _ . : -", MaxIdempotencyKeyLen)
	}
	if err := s.KnownAnswer(activityID, idempotencyKey); err != nil {
		return nil, err
	}
	nonce, claimID := newClaimID()
	c := Claim{ActivityID: activityID, UserID: userID, ClaimID: claimID, IdempotencyKey: idempotencyKey}
	start := time.Now()
	err := s.slots.Claim(ctx, &c)
	start = s.observe(StageClaim, start)
	if err != nil {
		if errors.Is(err, ErrSoldOut) {
			s.soldOut.Store(activityID, s.now().Add(soldOutFor).UnixNano())
		}
		var replay *Replay
		var limit *LimitError
		switch {
		case errors.As(err, &replay):
			return s.replay(ctx, activityID, userID, idempotencyKey, replay)
		case errors.As(err, &limit):
			limit.Held = s.held(ctx, activityID, userID, limit)
		case errors.Is(err, ErrNoState):
			return nil, s.noState(ctx, activityID)
		}
		return nil, err
	}
	p := Participation{
		Token:      s.signer.Sign(activityID, c.Slot, nonce),
		ActivityID: activityID,
		Slot:       c.Slot,
		UserID:     userID,
		ClaimID:    claimID,
		Epoch:      c.Epoch,
		Seq:        c.Seq,
		Held:       c.Held,
		// The key travels with the record, so a rebuild keeps the answer.
		IdempotencyKey: idempotencyKey,
		IssuedAt:       s.now().UTC().Truncate(time.Millisecond),
	}
	err = s.recorder.Record(ctx, p)
	start = s.observe(StageRecord, start)
	if err != nil {
		// A record that failed may still have been written (a timeout after
		// the write); it is settled void once the claim is given back.
		s.release(ctx, c)
		return nil, fmt.Errorf("%w: record participation: %w", ErrUnavailable, err)
	}
	err = s.slots.Confirm(ctx, c, p.IssuedAt)
	s.observe(StageConfirm, start)
	if err != nil {
		// The claim is not ours any more (or Redis failed): give it back if
		// it still is. Its record is settled void.
		s.release(ctx, c)
		if errors.Is(err, ErrUnavailable) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: confirm claim: %w", ErrUnavailable, err)
	}
	return &p, nil
}

// replay answers a retry of a confirmed join with its first answer: from
// the slot store, or, once the store has forgotten it, from the valid record
// that carries the idempotency key.
func (s *Service) replay(ctx context.Context, activityID int64, userID, key string, r *Replay) (*Participation, error) {
	if !r.Settled {
		held := s.signer.signHeld([]Participation{r.Participation})
		if len(held) != 1 {
			return nil, fmt.Errorf("%w: unreadable idempotency record", ErrUnavailable)
		}
		return &held[0], nil
	}
	ps, err := s.repo.UserParticipations(ctx, activityID, userID)
	if err != nil {
		return nil, err
	}
	for i := range ps {
		if ps[i].IdempotencyKey == key {
			return &ps[i], nil
		}
	}
	return nil, fmt.Errorf("%w: the first answer of idempotency key %q is settled but not found", ErrUnavailable, key)
}

// heldLookup bounds the look-up of the settled tokens of a user at the
// limit: the answer stands without them.
const heldLookup = time.Second

// held lists the tokens a user at the limit holds: those the slot store
// still keeps (not settled yet), and the valid records when some are
// settled. Without MySQL the list is what Redis knows: the answer,
// limit_reached, stands.
func (s *Service) held(ctx context.Context, activityID int64, userID string, limit *LimitError) []Participation {
	held := s.signer.signHeld(limit.Held)
	if limit.Settled == 0 {
		return held
	}
	ctx, cancel := context.WithTimeout(ctx, heldLookup)
	defer cancel()
	ps, err := s.repo.UserParticipations(ctx, activityID, userID)
	if err != nil {
		if s.logGate.Open() {
			s.log.Warn("join: the tokens of a user at the limit could not be read", "activity", activityID, "err", err)
		}
		return held
	}
	for _, p := range ps {
		if !slices.ContainsFunc(held, func(h Participation) bool { return h.Token == p.Token }) {
			held = append(held, p)
		}
	}
	slices.SortFunc(held, func(a, b Participation) int { return a.IssuedAt.Compare(b.IssuedAt) })
	return held
}

// DefaultRetention is how long after its close an activity stays live for
// the reconcile job — its records settled, its lost state rebuilt — and
// keeps its Redis state.
const DefaultRetention = 24 * time.Hour

// SetRetention sets how long after its close an activity keeps its Redis
// state (DefaultRetention when d is not positive); afterwards the job
// deletes it, and tokens and stats answer from MySQL.
func (s *Service) SetRetention(d time.Duration) {
	if d <= 0 {
		d = DefaultRetention
	}
	s.retention = d
}

// stateLockTTL bounds how long an open, a close or a rebuild may hold an
// activity's state lock; lockWait is how long an open or a close waits for
// it.
const (
	stateLockTTL = 60 * time.Second
	lockWait     = 3 * time.Second
)

// lockState takes the lock under which an activity's state changes in both
// stores: an open, a close, a rebuild. It waits up to lockWait, then returns
// ErrUnavailable.
func (s *Service) lockState(ctx context.Context, id int64) (*Lock, error) {
	deadline := s.now().Add(lockWait)
	for {
		l, err := s.slots.Lock(ctx, id, "state", stateLockTTL)
		if err != nil || l != nil {
			return l, err
		}
		if s.now().After(deadline) {
			return nil, fmt.Errorf("%w: activity %d is being rebuilt; retry", ErrUnavailable, id)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// KnownAnswer returns the answer this instance knows for a join without
// asking Redis: ErrSoldOut for a moment after a claim found the activity
// sold out (a join with an idempotency key is tried all the same: it may be
// the retry of a join that got a token), ErrNotFound when KnownMissing. It
// returns nil when the join must be tried.
func (s *Service) KnownAnswer(activityID int64, idempotencyKey string) error {
	if until, ok := s.soldOut.Load(activityID); ok && idempotencyKey == "" && s.now().UnixNano() < until.(int64) {
		return ErrSoldOut
	}
	if s.KnownMissing(activityID) {
		return ErrNotFound
	}
	return nil
}

// KnownMissing reports whether this instance found, within the last
// second, that no activity has this ID: its joins are answered not found
// from memory.
func (s *Service) KnownMissing(activityID int64) bool {
	ok, err := s.noStates.get(activityID, s.now())
	return ok && errors.Is(err, ErrNotFound)
}

// release gives a claim back even when the caller's context is cancelled: a
// client that hangs up mid-join must not keep the slot.
func (s *Service) release(ctx context.Context, c Claim) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.slots.Release(ctx, c); err != nil && s.logGate.Open() {
		// The lease runs out and the job gives the slot back.
		s.log.Warn("join: release failed; the lease will give the slot back",
			"activity", c.ActivityID, "slot", c.Slot, "err", err)
	}
}

// Token returns the valid participation a token stands for. A token whose
// record has not reached MySQL yet, or waits there as pending, is valid when
// its claim was confirmed. It returns ErrNotFound for a forged, altered,
// unknown or void token, and ErrUnavailable while the activity's state is
// being rebuilt.
//
// A confirmed claim moves from Redis to MySQL while it is looked up: the
// consumer (or the job) writes its record valid and then lets Redis forget
// it. So whatever Redis does not know is looked up in MySQL once more; a
// token handed out is in one of the two at every moment.
func (s *Service) Token(ctx context.Context, token string) (*Participation, error) {
	tc, err := s.signer.Verify(token)
	if err != nil {
		return nil, err
	}
	for again := false; ; again = true {
		p, err := s.recorded(ctx, token, tc)
		if !errors.Is(err, errAskRedis) {
			return p, err
		}
		if again {
			return nil, ErrNotFound
		}
		p, ok, err := s.slots.Confirmed(ctx, tc.ActivityID, tc.ClaimID)
		switch {
		case errors.Is(err, ErrNoState):
			return nil, s.lostToken(ctx, tc.ActivityID)
		case err != nil:
			return nil, err
		case ok && p.Slot == tc.Slot:
			p.Token, p.ActivityID, p.ClaimID = token, tc.ActivityID, tc.ClaimID
			return p, nil
		}
	}
}

// lostToken explains a token that MySQL does not hold as valid, of an
// activity without a live state in Redis: while the activity may still be
// rebuilt (open, or closed within the retention), its record may be on its
// way, so ask again (ErrUnavailable); otherwise ErrNotFound.
func (s *Service) lostToken(ctx context.Context, id int64) error {
	a, err := s.repo.Activity(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return ErrNotFound
	case err != nil:
		return err
	case a.State == StateOpen, a.State == StateClosed && s.now().Sub(a.UpdatedAt) < s.retention:
		// Or on shards this instance did not know of: it does now.
		s.slots.Learn(a)
		return fmt.Errorf("%w: the state of activity %d is being rebuilt", ErrUnavailable, id)
	}
	return ErrNotFound
}

// errAskRedis says that MySQL does not know a token as valid, and Redis
// may.
var errAskRedis = errors.New("activity: not valid in MySQL")

// recorded looks a token up in MySQL, and asks Redis about a pending record.
func (s *Service) recorded(ctx context.Context, token string, tc TokenClaim) (*Participation, error) {
	p, err := s.repo.Participation(ctx, token)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, errAskRedis
	case err != nil:
		return nil, err
	case p.ActivityID != tc.ActivityID || p.Slot != tc.Slot:
		return nil, ErrNotFound
	}
	switch p.Status {
	case RecordValid:
		return p, nil
	case RecordPending:
		out, err := s.outcomes(ctx, []Participation{*p})
		if err != nil {
			return nil, err
		}
		switch out[0] {
		case OutcomeConfirmed:
			return p, nil
		case OutcomeUnknown:
			return nil, fmt.Errorf("%w: the state of activity %d is being rebuilt", ErrUnavailable, p.ActivityID)
		case OutcomeGivenBack:
			// Or settled valid and forgotten since the read.
			return nil, errAskRedis
		}
	}
	return nil, ErrNotFound
}

// noState explains a claim refused for lack of live state: no such activity
// (ErrNotFound), an activity that is not open (ErrNotOpen), or an open one
// whose state the slot store lost (ErrUnavailable: never sell it from zero
// again). Answers are cached for a second so that a flood of joins on a bad
// id costs MySQL one query a second.
func (s *Service) noState(ctx context.Context, id int64) error {
	if ok, err := s.noStates.get(id, s.now()); ok {
		return err
	}
	a, err := s.repo.Activity(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		err = ErrNotFound
	case err != nil:
		return err
	case a.State == StateOpen:
		s.slots.Learn(a)
		err = fmt.Errorf("%w: activity %d is open but its slot state is missing", ErrUnavailable, id)
	default:
		err = ErrNotOpen
	}
	s.noStates.put(id, err, s.now())
	return err
}

// maxNoStates bounds the IDs noStateCache keeps: past it, it starts afresh.
const maxNoStates = 10_000

type noStateCache struct {
	mu sync.Mutex
	m  map[int64]noStateEntry
}

type noStateEntry struct {
	err     error
	expires time.Time
}

// get reports whether the answer for id is kept, and returns it.
func (c *noStateCache) get(id int64, now time.Time) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok || now.After(e.expires) {
		return false, nil
	}
	return true, e.err
}

func (c *noStateCache) put(id int64, err error, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) > maxNoStates {
		c.m = make(map[int64]noStateEntry)
	}
	c.m[id] = noStateEntry{err: err, expires: now.Add(time.Second)}
}
