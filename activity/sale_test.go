package activity_test

import (
	"sync"
	"testing"
	"time"

	"seckill/activity"
)

// TestTally: joins counted from many goroutines at once are all drained,
// by activity, outcome and second; a drain starts afresh; past MaxTallied
// activities in a stripe, new ones are not counted.
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
		n := 16 * activity.MaxTallied * 4
		for id := range n {
			tally.Count(int64(id+1), activity.JoinBusy, t0)
		}
		if got := len(tally.Drain()); got > 16*activity.MaxTallied || got == 0 {
			t.Errorf("%d activities counted of %d, want at most %d", got, n, 16*activity.MaxTallied)
		}
	})
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
