// Package inflight bounds the work in progress of one kind, the joins of an
// instance, and sheds what comes past the bound at once: under any arrival
// rate the work admitted stays fast, and what is refused costs little and
// takes nothing.
//
// The bound is fixed, or adaptive: a gradient limit after Netflix's
// concurrency-limits. Every window it compares the mean latency of the work
// done in it with a target: under it the limit grows in proportion, at most
// doubling a window, over it the limit shrinks in proportion, at most by
// half a window (both smoothed). The target is the larger of a configured
// one and three times the fastest work of the last minutes, the latency of
// work that did not queue (Vegas's no-load latency): a deployment whose
// dependencies answer slowly anyway is not taken for congested, and one
// whose work is fast keeps it fast.
// Work slows down as load rises (batches grow, queues fill), and that is
// no congestion until it passes the target, so the limit admits all the
// work the process can take within it, and no more.
package inflight

import (
	"container/list"
	"context"
	"errors"
	"math"
	"sync"
	"time"
)

// Reasons to shed. An arrival whose context ends while it waits gets the
// context's error instead.
var (
	// ErrLimit: every place is taken and no wait is allowed, or as many
	// arrivals as there are places wait already.
	ErrLimit = errors.New("inflight: every place taken")
	// ErrQueueTimeout: no place came free within Config.QueueTimeout.
	ErrQueueTimeout = errors.New("inflight: no place came free in time")
)

// Config configures a Limiter.
type Config struct {
	// Max is the most work in progress at once, at least 1: the limit when
	// fixed, its ceiling when adaptive.
	Max int
	// Adaptive lets the limit follow latency between Min and Max, starting
	// at Initial.
	Adaptive bool
	// Min and Initial bound and start the adaptive limit; min(Max, 16) and
	// min(Max, 64) when zero.
	Min, Initial int
	// QueueTimeout is how long an arrival past the limit waits for a place
	// (first come, first served); zero sheds it at once. At most as many
	// arrivals as the limit wait at a time, so waiting costs bounded memory.
	QueueTimeout time.Duration
	// Target is the least mean latency of a window's work the adaptive
	// limit keeps to (it keeps to three times the fastest work's latency
	// when that is more); 20 ms when zero.
	Target time.Duration
	// Window is how often the adaptive limit is recomputed from the
	// latencies since the last time; 100 ms when zero. A window closes on
	// the first completion after it has lasted Window and seen at least
	// MinWindowSamples completions.
	Window time.Duration
	// Now is the clock, time.Now when nil (tests set it).
	Now func() time.Time
}

// Tuning of the adaptive limit (the smoothing and headroom of Gradient2).
const (
	// MinWindowSamples is the fewest completions a window needs.
	MinWindowSamples = 10
	// smoothing is the weight of a new estimate against the old limit.
	smoothing = 0.2
	// headroom is what the limit grows by, before smoothing, in a window
	// within the target.
	headroom = 4.0
	// tolerance times the no-load latency is the least target; the
	// no-load latency is the fastest work of the current and the previous
	// lowEpoch.
	tolerance = 3.0
	lowEpoch  = 5 * time.Minute
)

// Limiter admits work up to its limit. Its methods are safe for concurrent
// use.
type Limiter struct {
	cfg Config
	now func() time.Time

	mu       sync.Mutex
	limit    float64 // the current limit; the places are its floor
	inFlight int
	waiters  list.List // of *waiter, oldest first

	// The window being measured.
	winStart       time.Time
	winSum         time.Duration
	winN           int
	winMin         time.Duration
	winMaxInFlight int
	// The fastest work (ns) of the current epoch and of the one before;
	// +Inf when none.
	low, lowBefore float64
	epochStart     time.Time
}

type waiter struct {
	ready   chan struct{}
	granted bool
}

// New returns a Limiter of cfg. It panics when cfg.Max is below 1: that is
// a programming error, configuration is checked before.
func New(cfg Config) *Limiter {
	if cfg.Max < 1 {
		panic("inflight: Max below 1")
	}
	if cfg.Min <= 0 {
		cfg.Min = min(cfg.Max, 16)
	}
	if cfg.Initial <= 0 {
		cfg.Initial = min(cfg.Max, 64)
	}
	cfg.Min = min(cfg.Min, cfg.Max)
	cfg.Initial = min(max(cfg.Initial, cfg.Min), cfg.Max)
	if cfg.Window <= 0 {
		cfg.Window = 100 * time.Millisecond
	}
	if cfg.Target <= 0 {
		cfg.Target = 20 * time.Millisecond
	}
	l := &Limiter{cfg: cfg, now: cfg.Now}
	if l.now == nil {
		l.now = time.Now
	}
	l.limit = float64(cfg.Max)
	if cfg.Adaptive {
		l.limit = float64(cfg.Initial)
	}
	l.winStart = l.now()
	l.epochStart = l.winStart
	l.low, l.lowBefore = math.Inf(1), math.Inf(1)
	return l
}

// Permit is a place taken by Acquire. Exactly one of Done and Ignore gives
// it back; those of the zero Permit do nothing.
type Permit struct {
	l     *Limiter
	start time.Time
}

// Done gives the place back and counts the time since Acquire as a latency
// sample of the adaptive limit.
func (p Permit) Done() {
	if p.l != nil {
		p.l.release(p.l.now().Sub(p.start), true)
	}
}

// Ignore gives the place back without a sample: for work that ended without
// doing what is measured (a dependency down, a client gone), whose latency
// says nothing about the load.
func (p Permit) Ignore() {
	if p.l != nil {
		p.l.release(0, false)
	}
}

// Acquire takes a place, waiting up to Config.QueueTimeout for one when all
// are taken. It returns ErrLimit or ErrQueueTimeout when none is free, or
// ctx's error when ctx ends while it waits; then nothing is taken.
func (l *Limiter) Acquire(ctx context.Context) (Permit, error) {
	l.mu.Lock()
	places := l.places()
	if l.inFlight < places && l.waiters.Len() == 0 {
		l.take()
		l.mu.Unlock()
		return Permit{l: l, start: l.now()}, nil
	}
	if l.cfg.QueueTimeout <= 0 || l.waiters.Len() >= places {
		l.mu.Unlock()
		return Permit{}, ErrLimit
	}
	w := &waiter{ready: make(chan struct{})}
	e := l.waiters.PushBack(w)
	l.mu.Unlock()

	t := time.NewTimer(l.cfg.QueueTimeout)
	defer t.Stop()
	var err error
	select {
	case <-w.ready:
		return Permit{l: l, start: l.now()}, nil
	case <-t.C:
		err = ErrQueueTimeout
	case <-ctx.Done():
		err = ctx.Err()
	}
	l.mu.Lock()
	if !w.granted {
		l.waiters.Remove(e)
		l.mu.Unlock()
		return Permit{}, err
	}
	l.mu.Unlock()
	// The place came in the same instant as the timeout or the end.
	if ctx.Err() != nil {
		l.release(0, false)
		return Permit{}, ctx.Err()
	}
	return Permit{l: l, start: l.now()}, nil
}

// Limit is the current limit: the most work admitted at once.
func (l *Limiter) Limit() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.places()
}

// InFlight is the work admitted and not yet given back.
func (l *Limiter) InFlight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inFlight
}

// Waiting is the number of arrivals waiting for a place.
func (l *Limiter) Waiting() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waiters.Len()
}

func (l *Limiter) places() int { return max(1, int(l.limit)) }

// take counts one more in flight; l.mu is held.
func (l *Limiter) take() {
	l.inFlight++
	l.winMaxInFlight = max(l.winMaxInFlight, l.inFlight)
}

func (l *Limiter) release(rtt time.Duration, sample bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight--
	if sample && l.cfg.Adaptive {
		l.sample(rtt)
	}
	// Places freed, by this release or a higher limit, go to the waiters
	// in their order of arrival.
	for l.inFlight < l.places() && l.waiters.Len() > 0 {
		w := l.waiters.Remove(l.waiters.Front()).(*waiter)
		w.granted = true
		l.take()
		close(w.ready)
	}
}

// sample adds one latency to the window, and closes the window when it is
// due; l.mu is held.
func (l *Limiter) sample(rtt time.Duration) {
	l.winSum += rtt
	if l.winN == 0 || rtt < l.winMin {
		l.winMin = rtt
	}
	l.winN++
	now := l.now()
	if l.winN < MinWindowSamples || now.Sub(l.winStart) < l.cfg.Window {
		return
	}
	short := max(float64(l.winSum)/float64(l.winN), 1)
	if now.Sub(l.epochStart) >= lowEpoch {
		l.lowBefore, l.low, l.epochStart = l.low, math.Inf(1), now
	}
	l.low = math.Min(l.low, float64(max(l.winMin, 1)))
	l.update(short, l.winMaxInFlight)
	l.winStart, l.winSum, l.winN, l.winMaxInFlight = now, 0, 0, l.inFlight
}

// update moves the limit by a window's mean latency short (ns) and the
// most work in flight during it; l.mu is held.
func (l *Limiter) update(short float64, maxInFlight int) {
	// Work that did not fill half the places says nothing of how many the
	// process can take.
	if float64(maxInFlight) < l.limit/2 {
		return
	}
	// Far under the target the limit may double in a window (before
	// smoothing), so that it meets a sudden crowd within a second; over it,
	// it halves at most.
	target := math.Max(float64(l.cfg.Target), tolerance*math.Min(l.low, l.lowBefore))
	gradient := math.Max(0.5, math.Min(2, target/short))
	next := l.limit*gradient + headroom
	next = l.limit*(1-smoothing) + next*smoothing
	l.limit = math.Max(float64(l.cfg.Min), math.Min(float64(l.cfg.Max), next))
}
