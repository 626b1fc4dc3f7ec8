package inflight_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"seckill/internal/inflight"
)

// clock is a clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_700_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func acquire(t *testing.T, l *inflight.Limiter) inflight.Permit {
	t.Helper()
	p, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatalf("Acquire: %v (limit %d, in flight %d)", err, l.Limit(), l.InFlight())
	}
	return p
}

func TestFixedLimit(t *testing.T) {
	l := inflight.New(inflight.Config{Max: 3})
	var ps []inflight.Permit
	for range 3 {
		ps = append(ps, acquire(t, l))
	}
	t.Run("LimitReachedSheds", func(t *testing.T) {
		if _, err := l.Acquire(context.Background()); !errors.Is(err, inflight.ErrLimit) {
			t.Fatalf("4th Acquire at limit 3: %v, want ErrLimit", err)
		}
		if n := l.InFlight(); n != 3 {
			t.Fatalf("in flight after a shed: %d, want 3", n)
		}
	})
	t.Run("ReleasedOnCompletion", func(t *testing.T) {
		ps[0].Done()
		ps[1].Ignore()
		ps = ps[2:]
		if n := l.InFlight(); n != 1 {
			t.Fatalf("in flight after two releases: %d, want 1", n)
		}
		ps = append(ps, acquire(t, l), acquire(t, l))
		if _, err := l.Acquire(context.Background()); !errors.Is(err, inflight.ErrLimit) {
			t.Fatalf("Acquire with every place retaken: %v, want ErrLimit", err)
		}
	})
	for _, p := range ps {
		p.Done()
	}
	if n, lim := l.InFlight(), l.Limit(); n != 0 || lim != 3 {
		t.Fatalf("at rest: in flight %d, limit %d; want 0 and 3 (a fixed limit never moves)", n, lim)
	}
}

func TestQueue(t *testing.T) {
	l := inflight.New(inflight.Config{Max: 2, QueueTimeout: time.Hour})
	a, b := acquire(t, l), acquire(t, l)

	t.Run("WaiterGetsTheFreedPlaceInOrder", func(t *testing.T) {
		got := make(chan int, 2)
		permits := make([]chan inflight.Permit, 2)
		for i := range 2 {
			// Queue them one after the other so their order is known.
			permits[i] = make(chan inflight.Permit, 1)
			go func() {
				p, err := l.Acquire(context.Background())
				if err != nil {
					t.Errorf("waiter %d: %v", i, err)
					got <- -1
					return
				}
				permits[i] <- p
				got <- i
			}()
			waitFor(t, func() bool { return l.Waiting() == i+1 })
		}
		a.Done()
		if first := <-got; first != 0 {
			t.Fatalf("the first place freed went to waiter %d, want 0", first)
		}
		if w := l.Waiting(); w != 1 {
			t.Fatalf("%d waiting after one place freed, want 1", w)
		}
		b.Done()
		if second := <-got; second != 1 {
			t.Fatalf("the second place freed went to waiter %d, want 1", second)
		}
		(<-permits[0]).Done()
		(<-permits[1]).Done()
		if n := l.InFlight(); n != 0 {
			t.Fatalf("in flight after the waiters: %d, want 0", n)
		}
	})

	t.Run("WaitersBoundedByTheLimit", func(t *testing.T) {
		ps := []inflight.Permit{acquire(t, l), acquire(t, l)}
		ctx, cancel := context.WithCancel(context.Background())
		errs := make(chan error, 2)
		for range 2 {
			go func() {
				_, err := l.Acquire(ctx)
				errs <- err
			}()
		}
		waitFor(t, func() bool { return l.Waiting() == 2 })
		if _, err := l.Acquire(context.Background()); !errors.Is(err, inflight.ErrLimit) {
			t.Fatalf("a third waiter at limit 2: %v, want ErrLimit", err)
		}
		// Client hang-up: both waiters leave without taking a place.
		cancel()
		for range 2 {
			if err := <-errs; !errors.Is(err, context.Canceled) {
				t.Fatalf("waiter whose context ended: %v, want context.Canceled", err)
			}
		}
		if w, n := l.Waiting(), l.InFlight(); w != 0 || n != 2 {
			t.Fatalf("after the hang-ups: %d waiting, %d in flight; want 0 and 2", w, n)
		}
		for _, p := range ps {
			p.Done()
		}
		if n := l.InFlight(); n != 0 {
			t.Fatalf("in flight at rest: %d, want 0", n)
		}
	})
}

func TestQueueTimeout(t *testing.T) {
	l := inflight.New(inflight.Config{Max: 1, QueueTimeout: time.Millisecond})
	p := acquire(t, l)
	if _, err := l.Acquire(context.Background()); !errors.Is(err, inflight.ErrQueueTimeout) {
		t.Fatalf("Acquire while the one place stays taken: %v, want ErrQueueTimeout", err)
	}
	if w, n := l.Waiting(), l.InFlight(); w != 0 || n != 1 {
		t.Fatalf("after the timeout: %d waiting, %d in flight; want 0 and 1", w, n)
	}
	p.Done()
	acquire(t, l).Done()
}

// TestNeverOverLimit races many goroutines through a small limit with a
// queue: the work running at once never exceeds the limit, and every place
// comes back.
func TestNeverOverLimit(t *testing.T) {
	const limit = 4
	l := inflight.New(inflight.Config{Max: limit, QueueTimeout: 200 * time.Microsecond})
	var running, most, admitted, shed atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				p, err := l.Acquire(context.Background())
				if err != nil {
					if !errors.Is(err, inflight.ErrLimit) && !errors.Is(err, inflight.ErrQueueTimeout) {
						t.Errorf("Acquire: %v", err)
					}
					shed.Add(1)
					continue
				}
				admitted.Add(1)
				n := running.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(10 * time.Microsecond)
				running.Add(-1)
				p.Done()
			}
		}()
	}
	wg.Wait()
	if m := most.Load(); m > limit {
		t.Fatalf("%d ran at once, limit %d", m, limit)
	}
	if n := l.InFlight(); n != 0 {
		t.Fatalf("in flight at rest: %d, want 0", n)
	}
	if admitted.Load() == 0 || shed.Load() == 0 {
		t.Fatalf("admitted %d, shed %d: the race should see both", admitted.Load(), shed.Load())
	}
}

// load runs one window of saturated demand on an adaptive limiter: every
// place taken, each held for d, then given back with its sample.
func load(t *testing.T, l *inflight.Limiter, c *clock, d time.Duration) {
	t.Helper()
	n := l.Limit()
	ps := make([]inflight.Permit, n)
	for i := range ps {
		ps[i] = acquire(t, l)
	}
	c.Add(d)
	for _, p := range ps {
		p.Done()
	}
	c.Add(100 * time.Millisecond)
}

func TestAdaptiveLimit(t *testing.T) {
	c := newClock()
	l := inflight.New(inflight.Config{Max: 200, Min: 8, Initial: 20, Adaptive: true, Target: 20 * time.Millisecond, Now: c.Now})
	if n := l.Limit(); n != 20 {
		t.Fatalf("initial limit %d, want 20", n)
	}

	t.Run("GrowsWithinTheTarget", func(t *testing.T) {
		// Latency that rises with the load but stays within the target is
		// no reason to shed.
		for i := range 200 {
			load(t, l, c, time.Duration(2+i/20)*time.Millisecond)
		}
		if n := l.Limit(); n != 200 {
			t.Fatalf("limit after 200 windows at 2 to 12 ms, target 20 ms: %d, want the ceiling 200", n)
		}
	})

	t.Run("ShrinksPastTheTarget", func(t *testing.T) {
		for range 10 {
			load(t, l, c, 30*time.Millisecond)
		}
		a := l.Limit()
		if a >= 200 {
			t.Fatalf("limit after 10 windows at 30 ms, target 20 ms: %d, want it shrunk from 200", a)
		}
		for range 10 {
			load(t, l, c, 80*time.Millisecond)
		}
		b := l.Limit()
		if b > a*2/3 {
			t.Fatalf("limit after 10 more windows at 80 ms: %d, want it shrunk faster than at 30 ms (from %d)", b, a)
		}
		for range 200 {
			load(t, l, c, 400*time.Millisecond)
		}
		if n := l.Limit(); n != 8 {
			t.Fatalf("limit after a long overload: %d, want the floor 8", n)
		}
	})

	t.Run("SettlesAtTheTarget", func(t *testing.T) {
		// Work whose latency is proportional to the work in flight (a
		// server of 1,000 per second): the limit settles where the latency
		// meets the target, 20 in flight, just over it by the headroom: 24.
		for range 300 {
			load(t, l, c, time.Duration(l.Limit())*time.Millisecond)
		}
		if n := l.Limit(); n < 18 || n > 26 {
			t.Fatalf("limit with latency = limit ms, target 20 ms: %d, want about 24", n)
		}
	})

	t.Run("RecoversWhenLatencyFalls", func(t *testing.T) {
		for range 300 {
			load(t, l, c, 5*time.Millisecond)
		}
		if n := l.Limit(); n != 200 {
			t.Fatalf("limit after 300 windows back at 5 ms: %d, want the ceiling 200", n)
		}
	})

	t.Run("AppLimitedDoesNotMove", func(t *testing.T) {
		before := l.Limit()
		for range 50 {
			// A quarter of the places used, slowly: the latency is not the
			// limiter's doing, and the limit stays.
			ps := make([]inflight.Permit, before/4)
			for i := range ps {
				ps[i] = acquire(t, l)
			}
			c.Add(time.Second)
			for _, p := range ps {
				p.Done()
			}
		}
		if n := l.Limit(); n != before {
			t.Fatalf("limit after app-limited windows: %d, want %d unchanged", n, before)
		}
	})

	t.Run("IgnoredWorkIsNoSample", func(t *testing.T) {
		before := l.Limit()
		for range 50 {
			ps := make([]inflight.Permit, l.Limit())
			for i := range ps {
				ps[i] = acquire(t, l)
			}
			c.Add(10 * time.Second)
			for _, p := range ps {
				p.Ignore()
			}
		}
		if n := l.Limit(); n != before {
			t.Fatalf("limit after ignored slow work: %d, want %d unchanged", n, before)
		}
	})
}

// TestAdaptiveTargetFollowsUnloadedLatency: where the work takes longer
// than the configured target even unloaded (dependencies far away), the
// limit keeps to three times the no-load latency instead of shrinking to its
// floor; and it still shrinks past that.
func TestAdaptiveTargetFollowsUnloadedLatency(t *testing.T) {
	c := newClock()
	l := inflight.New(inflight.Config{Max: 200, Min: 8, Initial: 20, Adaptive: true, Target: 5 * time.Millisecond, Now: c.Now})
	for range 100 {
		load(t, l, c, 8*time.Millisecond)
	}
	if n := l.Limit(); n != 200 {
		t.Fatalf("limit after 100 windows at a steady 8 ms, target 5 ms: %d, want the ceiling 200 (8 ms is this work unloaded)", n)
	}
	for range 50 {
		load(t, l, c, 40*time.Millisecond)
	}
	if n := l.Limit(); n > 20 {
		t.Fatalf("limit after 50 windows at 40 ms, 5× the unloaded 8 ms: %d, want it shrunk toward the floor", n)
	}
}

// TestGrownLimitAdmitsWaiters: a limit that grows hands its new places to
// the waiters at once.
func TestGrownLimitAdmitsWaiters(t *testing.T) {
	c := newClock()
	l := inflight.New(inflight.Config{Max: 100, Min: 10, Initial: 20, Adaptive: true, Target: time.Second, QueueTimeout: time.Hour, Now: c.Now})
	ps := make([]inflight.Permit, 20)
	for i := range ps {
		ps[i] = acquire(t, l)
	}
	// Nine completions, their places taken again: the window has nine of
	// the ten samples it needs, and every place is taken.
	for i := range 9 {
		ps[i].Done()
		ps[i] = acquire(t, l)
	}
	got := make(chan inflight.Permit, 2)
	for i := range 2 {
		go func() {
			p, err := l.Acquire(context.Background())
			if err != nil {
				t.Errorf("waiter: %v", err)
			}
			got <- p
		}()
		waitFor(t, func() bool { return l.Waiting() == i+1 })
	}
	// The tenth completion, far within the target, closes the window: the
	// limit grows, and both waiters get a place where one was freed.
	c.Add(200 * time.Millisecond)
	ps[19].Done()
	var waiters []inflight.Permit
	for range 2 {
		select {
		case p := <-got:
			waiters = append(waiters, p)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of the 2 waiters got a place (limit %d): the freed place alone, no new one", len(waiters), l.Limit())
		}
	}
	if n := l.Limit(); n <= 20 {
		t.Fatalf("limit %d after a window far within the target, want it grown from 20", n)
	}
	if n := l.InFlight(); n != 21 {
		t.Fatalf("%d in flight, want the 19 held and the 2 waiters", n)
	}
	for _, p := range append(ps[:19], waiters...) {
		p.Done()
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 10_000 {
		if cond() {
			return
		}
		time.Sleep(100 * time.Microsecond)
	}
	t.Fatal("condition never held")
}
