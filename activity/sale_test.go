package activity_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"seckill/activity"
)

// TestTally: joins counted from many goroutines at once are all drained,
// by activity, outcome and second; a drain starts afresh; past MaxTallied
// known activities, new ones are not counted.
func TestTally(t *testing.T) {
	var tally activity.Tally
	t0 := time.Unix(1_800_000_000, 0)
	outcomes := []activity.JoinOutcome{activity.JoinWon, activity.JoinSoldOut, activity.JoinLimitReached, activity.JoinBusy}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				// Activity 1 over two seconds, activity 2 in one.
				tally.Count(1, outcomes[i%4], t0.Add(time.Duration(i%2)*time.Second))
				if g == 0 {
					tally.Count(2, activity.JoinSoldOut, t0)
				}
			}
		}()
	}
	wg.Wait()
	got := map[int64]activity.JoinCounts{}
	for _, c := range tally.Drain() {
		got[c.ActivityID] = c
	}
	one := got[1]
	if want := (activity.TurnedAway{SoldOut: 2000, LimitReached: 2000, Busy: 2000}); one.TurnedAway != want {
		t.Errorf("activity 1 turned away %+v, want %+v", one.TurnedAway, want)
	}
	if len(one.Seconds) != 2 || one.Seconds[0].At != t0.Unix() || one.Seconds[1].At != t0.Unix()+1 {
		t.Fatalf("activity 1 seconds %+v, want two, oldest first", one.Seconds)
	}
	if j, w := one.Seconds[0].Joins+one.Seconds[1].Joins, one.Seconds[0].Winners+one.Seconds[1].Winners; j != 8000 || w != 2000 {
		t.Errorf("activity 1: %d joins and %d winners, want 8000 and 2000", j, w)
	}
	if two := got[2]; two.TurnedAway.SoldOut != 1000 || len(two.Seconds) != 1 || two.Seconds[0].Joins != 1000 || two.Seconds[0].Winners != 0 {
		t.Errorf("activity 2: %+v, want 1000 sold out in one second", two)
	}
	if again := tally.Drain(); len(again) != 0 {
		t.Errorf("a second drain gave %+v, want nothing", again)
	}

	t.Run("Bounded", func(t *testing.T) {
		var tally activity.Tally
		n := activity.MaxTallied * 2
		for id := range n {
			tally.Count(int64(id+1), activity.JoinSoldOut, t0)
		}
		if got := len(tally.Drain()); got != activity.MaxTallied {
			t.Errorf("%d activities counted of %d, want %d", got, n, activity.MaxTallied)
		}
		if got := tally.Uncounted(); got != int64(n-activity.MaxTallied) {
			t.Errorf("%d joins uncounted, want %d", got, n-activity.MaxTallied)
		}
	})
}

// TestTallyUnknownIDs: joins turned away busy before their id is looked up
// (shed, rate limited) are counted only for an activity the slot store
// answered a join of: a flood of them on made-up ids is not counted, does
// not crowd a real activity out, and leaves the flush nothing to write
// for them.
func TestTallyUnknownIDs(t *testing.T) {
	var tally activity.Tally
	now := time.Now()
	const flood = 16 * 1024
	tally.Count(7, activity.JoinWon, now) // known before the flood
	for id := range flood {
		tally.CountBusy(int64(1_000_000+id), now)
	}
	for range 1000 {
		tally.Count(42, activity.JoinWon, now)
	}
	tally.CountBusy(42, now)
	tally.CountBusy(7, now)
	got := map[int64]activity.JoinCounts{}
	out := tally.Drain()
	for _, c := range out {
		got[c.ActivityID] = c
	}
	if len(out) != 2 {
		t.Fatalf("%d activities drained, want 2 (42 and 7)", len(out))
	}
	if c := got[42]; len(c.Seconds) != 1 || c.Seconds[0].Joins != 1001 || c.Seconds[0].Winners != 1000 || c.TurnedAway.Busy != 1 {
		t.Errorf("activity 42: %+v, want 1000 winners and one busy join", c)
	}
	if c := got[7]; len(c.Seconds) != 1 || c.Seconds[0].Joins != 2 || c.TurnedAway.Busy != 1 {
		t.Errorf("activity 7: %+v, want a winner and one busy join", c)
	}
	if n := tally.Uncounted(); n != flood {
		t.Errorf("%d joins uncounted, want %d", n, flood)
	}

	t.Run("KnownFor", func(t *testing.T) {
		var tally activity.Tally
		tally.Count(1, activity.JoinWon, now)
		tally.Count(2, activity.JoinWon, now.Add(activity.KnownFor+time.Second))
		tally.Drain() // forgets 1
		tally.CountBusy(1, now)
		tally.CountBusy(2, now)
		if out := tally.Drain(); len(out) != 1 || out[0].ActivityID != 2 || tally.Uncounted() != 1 {
			t.Fatalf("drained %+v, uncounted %d; want activity 2 alone, one uncounted", out, tally.Uncounted())
		}
	})
}

// countersFake is the SaleCounters of TestFlushJoins.
type countersFake struct {
	activity.SaleCounters
	calls int
	fail  map[int64]bool // activities AddJoins fails
	added map[int64]activity.TurnedAway
}

func (f *countersFake) AddJoins(_ context.Context, cs []activity.JoinCounts) ([]activity.JoinCounts, error) {
	f.calls++
	var failed []activity.JoinCounts
	for _, c := range cs {
		if f.fail[c.ActivityID] {
			failed = append(failed, c)
			continue
		}
		a := f.added[c.ActivityID]
		a.SoldOut += c.TurnedAway.SoldOut
		f.added[c.ActivityID] = a
	}
	if len(failed) > 0 {
		return failed, errors.New("down")
	}
	return nil, nil
}

// TestFlushJoins: a flush hands every activity counted to the store in one
// call; the counts it could not add are kept for the next flush.
func TestFlushJoins(t *testing.T) {
	ctx := context.Background()
	var tally activity.Tally
	sc := &countersFake{fail: map[int64]bool{3: true}, added: map[int64]activity.TurnedAway{}}
	svc := activity.NewService(nil, nil, nil, nil, nil)
	svc.UseTally(&tally, sc)
	now := time.Now()
	for id := range int64(100) {
		tally.Count(id+1, activity.JoinSoldOut, now)
	}
	if err := svc.FlushJoins(ctx); err == nil || sc.calls != 1 || len(sc.added) != 99 {
		t.Fatalf("flush: %v, %d calls, %d activities added; want an error, one call, 99 added", err, sc.calls, len(sc.added))
	}
	sc.fail = nil
	tally.Count(3, activity.JoinSoldOut, now)
	if err := svc.FlushJoins(ctx); err != nil || sc.calls != 2 || sc.added[3].SoldOut != 2 {
		t.Fatalf("second flush: %v, %d calls, activity 3 %+v; want its two joins", err, sc.calls, sc.added[3])
	}
	if err := svc.FlushJoins(ctx); err != nil || sc.calls != 2 {
		t.Fatalf("a flush of nothing: %v, %d calls", err, sc.calls)
	}
}

func BenchmarkTallyCount(b *testing.B) {
	var tally activity.Tally
	now := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tally.Count(42, activity.JoinSoldOut, now)
		}
	})
}

// TestSpan: a sale starts at the later of beginAt and its open and ends at
// the earlier of endAt and its close.
func TestSpan(t *testing.T) {
	at := func(min int) time.Time { return time.Date(2030, 1, 1, 0, min, 0, 0, time.UTC) }
	ptr := func(t time.Time) *time.Time { return &t }
	for _, tt := range []struct {
		name           string
		a              activity.Activity
		started, ended time.Time
		duration       int64
	}{
		{"OpenedEarlyClosedLate", activity.Activity{BeginAt: at(10), EndAt: at(20), OpenedAt: ptr(at(5)), ClosedAt: ptr(at(25)), State: activity.StateClosed}, at(10), at(20), 600},
		{"OpenedLateClosedEarly", activity.Activity{BeginAt: at(10), EndAt: at(20), OpenedAt: ptr(at(12)), ClosedAt: ptr(at(15)), State: activity.StateClosed}, at(12), at(15), 180},
		{"StillOpen", activity.Activity{BeginAt: at(10), EndAt: at(20), OpenedAt: ptr(at(12)), State: activity.StateOpen}, at(12), at(20), 480},
		{"ClosedBeforeTheMigration", activity.Activity{BeginAt: at(10), EndAt: at(20), UpdatedAt: at(14), State: activity.StateClosed}, at(10), at(14), 240},
	} {
		t.Run(tt.name, func(t *testing.T) {
			started, ended := tt.a.Span()
			m := activity.Summary{StartedAt: started, EndedAt: ended}
			if !started.Equal(tt.started) || !ended.Equal(tt.ended) || m.DurationSeconds() != tt.duration {
				t.Errorf("span %v – %v (%d s), want %v – %v (%d s)", started, ended, m.DurationSeconds(), tt.started, tt.ended, tt.duration)
			}
		})
	}
}
