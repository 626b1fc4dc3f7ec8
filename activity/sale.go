package activity

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// JoinOutcome is how a join was answered, as the sale's numbers count it.
type JoinOutcome int

// The outcomes counted: a token (a winner), and the joins turned away.
const (
	JoinWon          JoinOutcome = iota // 200: a token
	JoinSoldOut                         // 409 sold_out
	JoinLimitReached                    // 409 limit_reached
	JoinBusy                            // 503 shed or slots_in_flight, 429 rate_limited
)

// TurnedAway counts the joins of an activity answered without a token, by
// why.
type TurnedAway struct {
	SoldOut, LimitReached, Busy int64
}

// atLeast returns the larger of t and u, count by count.
func (t TurnedAway) atLeast(u TurnedAway) TurnedAway {
	return TurnedAway{max(t.SoldOut, u.SoldOut), max(t.LimitReached, u.LimitReached), max(t.Busy, u.Busy)}
}

// SecondCount is the joins answered in one second (Unix time At), and the
// winners among them.
type SecondCount struct {
	At             int64
	Joins, Winners int64
}

// JoinCounts are the joins of one activity counted by an instance since
// its last flush.
type JoinCounts struct {
	ActivityID int64
	TurnedAway TurnedAway
	Seconds    []SecondCount // oldest first
}

// Turnout is what the slot store keeps of an activity's joins, added up
// over every instance: the joins turned away and the busiest second.
type Turnout struct {
	TurnedAway TurnedAway
	PeakJoins  int64
	PeakAt     time.Time // zero when no join was counted
}

// SaleCounters keep the joins counted by every instance (Redis), under the
// activity's state, and gone with it.
type SaleCounters interface {
	// AddJoins adds one instance's counts of activities' joins to theirs,
	// all of them in a bounded number of round trips; counts for an
	// activity without a state are dropped. It returns the counts it could
	// not add, to try again, with why.
	AddJoins(ctx context.Context, cs []JoinCounts) (failed []JoinCounts, err error)
	// Turnout returns an activity's numbers; false when it has no state.
	Turnout(ctx context.Context, activityID int64) (Turnout, bool, error)
	// Timeline returns the seconds from from to to (Unix times, both in)
	// in which joins were answered, oldest first.
	Timeline(ctx context.Context, activityID, from, to int64) ([]SecondCount, error)
}

// tallyStripes spreads the counting of joins over this many locks, picked
// at random for each join: a storm on one activity does not queue on one.
const tallyStripes = 16

// MaxTallied bounds the activities a Tally knows, and so those it counts
// between two flushes: an activity is known from the first join of it the
// slot store answered (Count) until no join of it was answered for
// KnownFor. Joins turned away before their activity is looked up
// (CountBusy: shed, rate limited) are counted only for a known activity, so
// a flood of joins on made-up ids neither fills the tally nor costs the
// flush anything: they are added up in Uncounted alone.
const MaxTallied = 4096

// KnownFor is how long after the last join of it the slot store answered
// an activity stays known to a Tally.
const KnownFor = 5 * time.Minute

// Tally counts the joins of each activity by outcome and second, in this
// instance's memory; Service.FlushJoins adds them to the slot store's.
// The zero Tally is ready. Count and CountBusy are safe for concurrent
// use and cost a lock of one stripe of sixteen, no round trip.
type Tally struct {
	stripes [tallyStripes]tallyStripe
	// known maps each known activity to the Unix second of the last join
	// of it the slot store answered (*atomic.Int64); nKnown is its size.
	known     sync.Map
	nKnown    atomic.Int64
	uncounted atomic.Int64
}

type tallyStripe struct {
	mu sync.Mutex
	m  map[int64]*JoinCounts
	_  [40]byte // a cache line each
}

// Count counts one join of an activity the slot store answered at at (a
// token, sold out, at the limit, slots in flight): the activity exists,
// and is known from now on. Past MaxTallied known activities, the joins
// of a new one go to Uncounted.
func (t *Tally) Count(activityID int64, outcome JoinOutcome, at time.Time) {
	sec := at.Unix()
	if !t.learn(activityID, sec) {
		t.uncounted.Add(1)
		return
	}
	t.add(activityID, outcome, sec)
}

// CountBusy counts one join of an activity turned away busy at at before
// the activity was looked up (shed, rate limited): counted when the
// activity is known, else only in Uncounted.
func (t *Tally) CountBusy(activityID int64, at time.Time) {
	if _, ok := t.known.Load(activityID); !ok {
		t.uncounted.Add(1)
		return
	}
	t.add(activityID, JoinBusy, at.Unix())
}

// Uncounted returns how many joins this Tally did not count since it was
// made: those turned away busy on activities it did not know (made-up ids
// among them), and those of activities past MaxTallied.
func (t *Tally) Uncounted() int64 { return t.uncounted.Load() }

// learn makes an activity known as of second sec; false when MaxTallied
// activities are known already.
func (t *Tally) learn(id, sec int64) bool {
	if v, ok := t.known.Load(id); ok {
		if last := v.(*atomic.Int64); last.Load() < sec {
			last.Store(sec)
		}
		return true
	}
	if t.nKnown.Add(1) > MaxTallied {
		t.nKnown.Add(-1)
		return false
	}
	last := new(atomic.Int64)
	last.Store(sec)
	if v, loaded := t.known.LoadOrStore(id, last); loaded {
		t.nKnown.Add(-1)
		if last := v.(*atomic.Int64); last.Load() < sec {
			last.Store(sec)
		}
	}
	return true
}

// forget drops the activities no join of which the slot store answered
// for KnownFor before the latest one answered.
func (t *Tally) forget() {
	var newest int64
	t.known.Range(func(_, v any) bool {
		newest = max(newest, v.(*atomic.Int64).Load())
		return true
	})
	t.known.Range(func(k, v any) bool {
		if v.(*atomic.Int64).Load() < newest-int64(KnownFor/time.Second) {
			t.known.Delete(k)
			t.nKnown.Add(-1)
		}
		return true
	})
}

func (t *Tally) add(id int64, outcome JoinOutcome, sec int64) {
	st := &t.stripes[rand.N(tallyStripes)]
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.add(id, outcome, sec, 1) {
		t.uncounted.Add(1)
	}
}

// add counts n joins of one outcome in second sec; the stripe is locked.
// It returns false when the stripe counts MaxTallied activities already
// (the known ones changed since the last flush).
func (st *tallyStripe) add(id int64, outcome JoinOutcome, sec, n int64) bool {
	c := st.m[id]
	if c == nil {
		if st.m == nil {
			st.m = map[int64]*JoinCounts{}
		}
		if len(st.m) >= MaxTallied {
			return false
		}
		c = &JoinCounts{ActivityID: id}
		st.m[id] = c
	}
	switch outcome {
	case JoinSoldOut:
		c.TurnedAway.SoldOut += n
	case JoinLimitReached:
		c.TurnedAway.LimitReached += n
	case JoinBusy:
		c.TurnedAway.Busy += n
	}
	last := len(c.Seconds) - 1
	if last < 0 || c.Seconds[last].At != sec {
		// Seconds come in order but for a join that began in one and ended
		// in the next: find it among the few of this flush.
		last = -1
		for i := range c.Seconds {
			if c.Seconds[i].At == sec {
				last = i
			}
		}
		if last < 0 {
			c.Seconds = append(c.Seconds, SecondCount{At: sec})
			last = len(c.Seconds) - 1
		}
	}
	c.Seconds[last].Joins += n
	if outcome == JoinWon {
		c.Seconds[last].Winners += n
	}
	return true
}

// Drain returns what was counted since the last Drain, by activity, and
// starts afresh; it forgets the activities known no longer (KnownFor).
func (t *Tally) Drain() []JoinCounts {
	t.forget()
	merged := map[int64]*JoinCounts{}
	var order []int64
	for i := range t.stripes {
		st := &t.stripes[i]
		st.mu.Lock()
		m := st.m
		st.m = nil
		st.mu.Unlock()
		for id, c := range m {
			into := merged[id]
			if into == nil {
				merged[id], order = c, append(order, id)
				continue
			}
			into.merge(c)
		}
	}
	out := make([]JoinCounts, 0, len(order))
	for _, id := range order {
		c := merged[id]
		sortSeconds(c.Seconds)
		out = append(out, *c)
	}
	return out
}

// merge adds o's counts to c's.
func (c *JoinCounts) merge(o *JoinCounts) {
	c.TurnedAway.SoldOut += o.TurnedAway.SoldOut
	c.TurnedAway.LimitReached += o.TurnedAway.LimitReached
	c.TurnedAway.Busy += o.TurnedAway.Busy
next:
	for _, s := range o.Seconds {
		for i := range c.Seconds {
			if c.Seconds[i].At == s.At {
				c.Seconds[i].Joins += s.Joins
				c.Seconds[i].Winners += s.Winners
				continue next
			}
		}
		c.Seconds = append(c.Seconds, s)
	}
}

// putBack counts again what a flush could not write, for the next one.
func (t *Tally) putBack(c JoinCounts) {
	st := &t.stripes[rand.N(tallyStripes)]
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.m == nil {
		st.m = map[int64]*JoinCounts{}
	}
	if into := st.m[c.ActivityID]; into != nil {
		into.merge(&c)
	} else if len(st.m) < MaxTallied {
		st.m[c.ActivityID] = &c
	}
}

func sortSeconds(s []SecondCount) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].At < s[j-1].At; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// UseTally makes t the counts FlushJoins writes, and sc where they go
// (the slot store by default, when it is one).
func (s *Service) UseTally(t *Tally, sc SaleCounters) {
	s.tally = t
	if sc != nil {
		s.sales = sc
	}
}

// Tally returns the counts of this instance's joins (nil when none is
// kept).
func (s *Service) Tally() *Tally { return s.tally }

// FlushJoins adds the joins counted in this instance's memory since the
// last flush to the slot store's, every activity in one batch. Counts the
// store cannot take now are kept for the next flush; counts of an activity
// without a state are dropped by the store.
func (s *Service) FlushJoins(ctx context.Context) error {
	if s.tally == nil || s.sales == nil {
		return nil
	}
	cs := s.tally.Drain()
	if len(cs) == 0 {
		return nil
	}
	failed, err := s.sales.AddJoins(ctx, cs)
	for _, c := range failed {
		s.tally.putBack(c)
	}
	return err
}

// MaxTimeline is the most seconds a timeline covers.
const MaxTimeline = 3600

// Timeline is the seconds of a sale in which joins were answered, and its
// busiest second over the whole sale.
type Timeline struct {
	Seconds   []SecondCount
	PeakJoins int64
	PeakAt    time.Time // zero: no join counted
}

// Timeline returns the seconds with joins among the last seconds of an
// activity's sale: up to now while it is open, up to its close once
// closed. It returns ErrNotFound, a *ValidationError for seconds out of
// 1–MaxTimeline, or ErrUnavailable. An activity that never opened, or
// whose Redis state is gone, has none.
func (s *Service) Timeline(ctx context.Context, id int64, seconds int) (*Timeline, error) {
	if seconds < 1 || seconds > MaxTimeline {
		return nil, invalid("seconds", "must be between 1 and %d", MaxTimeline)
	}
	a, _, err := s.read(ctx, id)
	if err != nil {
		return nil, err
	}
	tl := &Timeline{Seconds: []SecondCount{}}
	if s.sales == nil || a.State != StateOpen && a.State != StateClosed {
		return tl, nil
	}
	to := s.now()
	if a.State == StateClosed {
		to = a.UpdatedAt
		if a.ClosedAt != nil {
			to = *a.ClosedAt
		}
	}
	turnout, ok, err := s.sales.Turnout(ctx, id)
	if err != nil || !ok {
		return tl, err
	}
	tl.PeakJoins, tl.PeakAt = turnout.PeakJoins, turnout.PeakAt
	end := to.Unix()
	if tl.Seconds, err = s.sales.Timeline(ctx, id, end-int64(seconds)+1, end); err != nil {
		return nil, err
	}
	return tl, nil
}

// Summary is what an activity's sale came to, kept in MySQL from its close
// on.
type Summary struct {
	Winners    int64
	TurnedAway TurnedAway
	PeakJoins  int64
	PeakAt     *time.Time
	// StartedAt is the later of beginAt and the open, EndedAt the earlier
	// of endAt and the close.
	StartedAt, EndedAt time.Time
	// At is when the summary was last written.
	At time.Time
}

// DurationSeconds is how long the sale lasted, in whole seconds.
func (m *Summary) DurationSeconds() int64 {
	return max(int64(m.EndedAt.Sub(m.StartedAt)/time.Second), 0)
}

// Span returns when an activity's sale started and ended: the later of
// beginAt and its open, the earlier of endAt and its close.
func (a *Activity) Span() (started, ended time.Time) {
	started, ended = a.BeginAt, a.EndAt
	if a.OpenedAt != nil && a.OpenedAt.After(started) {
		started = *a.OpenedAt
	}
	closed := a.UpdatedAt
	if a.ClosedAt != nil {
		closed = *a.ClosedAt
	}
	if a.State == StateClosed && closed.Before(ended) {
		ended = closed
	}
	return started, ended
}

// summarize brings the summary of a closed activity up to date with the
// slot store's numbers, c and ok those of Counters: winners are the tokens
// issued until every one is recorded, then the records; the joins turned
// away and the peak are the slot store's while it keeps the activity's
// state, and stay as they were written once it does not. It writes only
// what changed.
func (s *Service) summarize(ctx context.Context, a *Activity, c Counters, ok bool) error {
	if a.State != StateClosed {
		return nil
	}
	m := Summary{Winners: a.Recorded}
	if a.Summary != nil {
		m = *a.Summary
		m.Winners = a.Recorded
	}
	if ok {
		// Until every token issued is recorded valid, the tokens issued.
		if c.InFlight > 0 || c.Issued > a.Recorded {
			m.Winners = c.Issued
		}
		if s.sales != nil {
			t, live, err := s.sales.Turnout(ctx, a.ID)
			if err != nil {
				return err
			}
			if live {
				// The counts only grow, but a rebuild of a lost state
				// starts them again from nothing: the summary keeps the
				// larger of what it has and what the slot store says.
				m.TurnedAway = m.TurnedAway.atLeast(t.TurnedAway)
				if t.PeakJoins > m.PeakJoins {
					m.PeakJoins, m.PeakAt = t.PeakJoins, nil
					if !t.PeakAt.IsZero() {
						at := t.PeakAt
						m.PeakAt = &at
					}
				}
			}
		}
	}
	m.StartedAt, m.EndedAt = a.Span()
	if a.Summary != nil && sameSummary(*a.Summary, m) {
		return nil
	}
	m.At = s.now().UTC().Truncate(time.Millisecond)
	return s.repo.SetSummary(ctx, a.ID, m)
}

func sameSummary(a, b Summary) bool {
	samePeak := a.PeakAt == nil && b.PeakAt == nil || a.PeakAt != nil && b.PeakAt != nil && a.PeakAt.Equal(*b.PeakAt)
	return a.Winners == b.Winners && a.TurnedAway == b.TurnedAway && a.PeakJoins == b.PeakJoins && samePeak &&
		a.StartedAt.Equal(b.StartedAt) && a.EndedAt.Equal(b.EndedAt)
}

// Inspect returns an activity with its live numbers, as far as its
// dependencies answer: with Redis down, the activity from MySQL, its
// Redis numbers absent and Stats.Unavailable ["redis"]; with MySQL down,
// the copy this instance last read (Stats.ReadAt says when), its MySQL
// numbers absent and Unavailable ["mysql"]. It returns ErrNotFound, or
// MySQL's ErrUnavailable when MySQL is down and the activity was never read
// here, or when both are down.
func (s *Service) Inspect(ctx context.Context, id int64) (*Activity, *Stats, error) {
	a, stale, err := s.read(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if stale == nil {
		st, err := s.Stats(ctx, a)
		if errors.Is(err, ErrUnavailable) {
			return a, &Stats{Surplus: a.Surplus, ReconciledAt: a.ReconciledAt, Recorded: a.Recorded,
				Unavailable: []string{"redis"}}, nil
		}
		return a, st, err
	}
	// From the copy: only what Redis says is known now.
	st := &Stats{Unavailable: []string{"mysql"}, ReadAt: &stale.at}
	c, ok, err := s.slots.Counters(ctx, id)
	if err != nil {
		return nil, nil, stale.err
	}
	switch {
	case ok:
		st.Claimed, st.InFlight, st.Issued = c.Claimed, c.InFlight, c.Issued
		if st.TurnedAway, err = s.turnedAway(ctx, id); err != nil {
			return nil, nil, stale.err
		}
	case a.State == StateClosed:
		// Its Redis state is gone after the retention: the sale's numbers
		// are MySQL's, as of the copy, which a closed sale no longer
		// changes.
		st.Claimed, st.Issued = a.Stock-a.Surplus, a.Recorded
	}
	return a, st, nil
}

// turnedAway returns the joins of an activity turned away, nil when the
// slot store keeps none.
func (s *Service) turnedAway(ctx context.Context, id int64) (*TurnedAway, error) {
	if s.sales == nil {
		return nil, nil
	}
	t, ok, err := s.sales.Turnout(ctx, id)
	if err != nil || !ok {
		return nil, err
	}
	return &t.TurnedAway, nil
}

// maxReads bounds the activities whose last MySQL read an instance keeps.
const maxReads = 4096

// reads keeps the last MySQL read of each activity an instance read, for
// the admin's view while MySQL is down.
type reads struct {
	mu sync.Mutex
	m  map[int64]readCopy
}

type readCopy struct {
	a  Activity
	at time.Time
}

func (r *reads) put(a *Activity, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[int64]readCopy{}
	}
	if _, ok := r.m[a.ID]; !ok && len(r.m) >= maxReads {
		for id := range r.m { // one at random
			delete(r.m, id)
			break
		}
	}
	r.m[a.ID] = readCopy{a: *a, at: at}
}

// get returns a copy of the last read of id, and when it was made.
func (r *reads) get(id int64) (*Activity, time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.m[id]
	if !ok {
		return nil, time.Time{}, false
	}
	a := c.a
	return &a, c.at, true
}

// staleRead says that an activity comes from the copy read at at, MySQL
// failing now with err.
type staleRead struct {
	at  time.Time
	err error
}

// read returns an activity from MySQL, or while MySQL is down the copy
// this instance last read, with a staleRead.
func (s *Service) read(ctx context.Context, id int64) (*Activity, *staleRead, error) {
	a, err := s.repo.Activity(ctx, id)
	if err == nil {
		s.reads.put(a, s.now().UTC().Truncate(time.Millisecond))
		return a, nil, nil
	}
	if !errors.Is(err, ErrUnavailable) {
		return nil, nil, err
	}
	c, at, ok := s.reads.get(id)
	if !ok {
		return nil, nil, err
	}
	return c, &staleRead{at: at, err: err}, nil
}
