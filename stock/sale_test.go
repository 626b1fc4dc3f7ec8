package stock_test

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"seckill/activity"
	"seckill/internal/testenv"
)

// TestSaleCounters: counts added by several instances add up, per second
// and in the turned-away counters; the peak is the busiest second so far;
// the timeline keeps the seconds of its window that had joins; counts for
// an activity without a state are dropped, and Drop deletes every one.
func TestSaleCounters(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 71, 5, 1)
	const t0 = 1_900_000_000
	flush := func(id int64, away activity.TurnedAway, secs ...activity.SecondCount) {
		t.Helper()
		if failed, err := s.AddJoins(ctx, []activity.JoinCounts{{ActivityID: id, TurnedAway: away, Seconds: secs}}); err != nil || len(failed) != 0 {
			t.Fatal(failed, err)
		}
	}
	// Two instances, then a second one later.
	flush(a.ID, activity.TurnedAway{SoldOut: 3, Busy: 1}, activity.SecondCount{At: t0, Joins: 4, Winners: 2}, activity.SecondCount{At: t0 + 1, Joins: 5})
	flush(a.ID, activity.TurnedAway{SoldOut: 2, LimitReached: 1}, activity.SecondCount{At: t0 + 1, Joins: 3, Winners: 1})
	flush(a.ID, activity.TurnedAway{SoldOut: 1}, activity.SecondCount{At: t0 + 5, Joins: 7})

	got, ok, err := s.Turnout(ctx, a.ID)
	if err != nil || !ok {
		t.Fatalf("turnout: %v %v", ok, err)
	}
	want := activity.Turnout{TurnedAway: activity.TurnedAway{SoldOut: 6, LimitReached: 1, Busy: 1}, PeakJoins: 8, PeakAt: time.Unix(t0+1, 0).UTC()}
	if got != want {
		t.Fatalf("turnout %+v, want %+v", got, want)
	}
	tl, err := s.Timeline(ctx, a.ID, t0, t0+4)
	if err != nil {
		t.Fatal(err)
	}
	if wantTL := []activity.SecondCount{{At: t0, Joins: 4, Winners: 2}, {At: t0 + 1, Joins: 8, Winners: 1}}; !slices.Equal(tl, wantTL) {
		t.Fatalf("timeline %+v, want %+v", tl, wantTL)
	}
	if tl, err := s.Timeline(ctx, a.ID, t0-activity.MaxTimeline*10, t0+10); err != nil || len(tl) != 3 {
		t.Fatalf("a window over the limit: %+v %v, want the three seconds", tl, err)
	}

	t.Run("NoStateDropped", func(t *testing.T) {
		flush(999, activity.TurnedAway{SoldOut: 1}, activity.SecondCount{At: t0, Joins: 1})
		if _, ok, err := s.Turnout(ctx, 999); ok || err != nil {
			t.Fatalf("turnout of an activity without a state: %v %v", ok, err)
		}
		if tl, err := s.Timeline(ctx, 999, t0, t0); err != nil || len(tl) != 0 {
			t.Fatalf("timeline of an activity without a state: %+v %v", tl, err)
		}
	})
	t.Run("GoneWithDrop", func(t *testing.T) {
		if err := s.Drop(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		flush(a.ID, activity.TurnedAway{SoldOut: 1}, activity.SecondCount{At: t0, Joins: 1})
		if tl, err := s.Timeline(ctx, a.ID, t0, t0+10); err != nil || len(tl) != 0 {
			t.Fatalf("timeline after Drop: %+v %v", tl, err)
		}
		if _, ok, _ := s.Turnout(ctx, a.ID); ok {
			t.Fatal("turnout after Drop")
		}
	})
}

// roundTrips counts the round trips a Redis client makes: each command
// alone, each pipeline.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}

// TestAddJoinsBatched: the counts of as many activities as a tally holds
// are added in a few pipelined round trips, not one call each; those of
// the activities without a state are dropped, the others added.
func TestAddJoinsBatched(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 72, 5, 1)
	now := time.Now().Unix()
	cs := make([]activity.JoinCounts, 0, activity.MaxTallied)
	for i := range activity.MaxTallied - 1 {
		cs = append(cs, activity.JoinCounts{ActivityID: int64(5_000_000 + i), TurnedAway: activity.TurnedAway{Busy: 1},
			Seconds: []activity.SecondCount{{At: now, Joins: 1}}})
	}
	cs = append(cs, activity.JoinCounts{ActivityID: a.ID, TurnedAway: activity.TurnedAway{SoldOut: 2, Busy: 1},
		Seconds: []activity.SecondCount{{At: now, Joins: 4, Winners: 1}}})
	var trips roundTrips
	s.Client().AddHook(&trips)
	start := time.Now()
	if failed, err := s.AddJoins(ctx, cs); err != nil || len(failed) != 0 {
		t.Fatalf("AddJoins: %d failed, %v", len(failed), err)
	}
	// A pipeline a batch, one reading the route keys (shard.go), and once
	// the script is loaded again and its batch sent again.
	batches := (int64(len(cs)) + 1023) / 1024
	if n := trips.n.Load(); n > batches+3 {
		t.Errorf("%d activities added in %d round trips, want at most %d", len(cs), n, batches+3)
	}
	t.Logf("%d activities added in %d round trips, %v", len(cs), trips.n.Load(), time.Since(start))
	got, ok, err := s.Turnout(ctx, a.ID)
	if err != nil || !ok || got.TurnedAway != (activity.TurnedAway{SoldOut: 2, Busy: 1}) || got.PeakJoins != 4 {
		t.Fatalf("turnout of the activity: %+v %v %v", got, ok, err)
	}
	if keys := testenv.Keys(t, s.Client(), strings.TrimSuffix(s.KeysOf(5_000_000).Meta, "meta")+"*"); len(keys) != 0 {
		t.Fatalf("an activity without a state got keys %v", keys)
	}
}
