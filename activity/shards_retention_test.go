package activity_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"seckill/activity"
	"seckill/activity/mysql"
	"seckill/internal/testenv"
)

// A closed sharded activity past its retention: the job writes its summary
// from every shard's numbers and the first shard's counted joins, then
// deletes every shard's keys, the route and its entry in the shards hash;
// the stats are MySQL's from then on.
func TestShardedRetentionDropsEveryShard(t *testing.T) {
	ctx := context.Background()
	q := &queueRecorder{}
	env := testenv.New(t, testenv.Options{Recorder: func(*mysql.Repository) activity.Recorder { return q }})
	env.Svc.SetRetention(time.Second)
	tally := &activity.Tally{}
	env.Svc.UseTally(tally, nil)
	begin, end := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	name, stockN, limit, shards := "x", int64(3), int64(1), 3
	a, err := env.Svc.Create(ctx, activity.Fields{Name: &name, Stock: &stockN, PerUserLimit: &limit, BeginAt: &begin, EndAt: &end, Shards: &shards})
	if err != nil {
		t.Fatal(err)
	}
	for _, act := range []activity.Action{activity.ActionApprove, activity.ActionOpen} {
		if _, err := env.Svc.Transition(ctx, a.ID, act); err != nil {
			t.Fatal(err)
		}
	}
	var tokens []*activity.Participation
	for i := range 6 {
		p, err := env.Svc.Join(ctx, a.ID, fmt.Sprintf("u%d", i), "")
		switch {
		case err == nil:
			tokens = append(tokens, p)
			tally.Count(a.ID, activity.JoinWon, time.Now())
		case errors.Is(err, activity.ErrSoldOut):
			tally.Count(a.ID, activity.JoinSoldOut, time.Now())
		default:
			t.Fatalf("join %d: %v", i, err)
		}
	}
	if len(tokens) != 3 {
		t.Fatalf("%d tokens of stock 3", len(tokens))
	}
	if err := env.Svc.FlushJoins(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := env.Svc.Get(ctx, a.ID)
	if _, st, err := env.Svc.Inspect(ctx, a.ID); err != nil || st.TurnedAway == nil || st.TurnedAway.SoldOut != 3 || st.Issued != 3 {
		t.Errorf("inspect of the open sharded activity: %+v %v", st, err)
	}
	if tl, err := env.Svc.Timeline(ctx, a.ID, 60); err != nil || tl.PeakJoins != 6 {
		t.Errorf("timeline of the open sharded activity: %+v %v", tl, err)
	}
	_ = got
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionClose); err != nil {
		t.Fatal(err)
	}
	if err := env.Svc.StoreEvents(ctx, q.drain()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	for range 2 {
		if _, err := env.Job.Cycle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, pattern := range []string{fmt.Sprintf("%s:{%d}:*", env.Prefix, a.ID), fmt.Sprintf("%s:{%d.*", env.Prefix, a.ID)} {
		if keys := testenv.Keys(t, env.Redis, pattern); len(keys) != 0 {
			t.Errorf("keys left after the retention: %v", keys)
		}
	}
	if v, err := env.Redis.HGet(ctx, env.Prefix+":shards", strconv.FormatInt(a.ID, 10)).Result(); err == nil {
		t.Errorf("the shards hash keeps %s for the dropped activity", v)
	}
	if ms, _ := env.Redis.SMembers(ctx, env.Prefix+":live").Result(); strings.Contains(strings.Join(ms, ","), strconv.FormatInt(a.ID, 10)) {
		t.Errorf("still listed: %v", ms)
	}
	closed, err := env.Svc.Get(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m := closed.Summary; m == nil || m.Winners != 3 || m.TurnedAway.SoldOut != 3 || m.PeakJoins != 6 {
		t.Errorf("summary %+v, want 3 winners, 3 turned away sold out, a peak of 6", m)
	}
	st, err := env.Svc.Stats(ctx, closed)
	if err != nil || st.Claimed != 3 || st.Issued != 3 || st.Recorded != 3 || st.Surplus != 0 {
		t.Errorf("stats after the retention %+v %v", st, err)
	}
	for _, p := range tokens {
		if _, err := env.Svc.Token(ctx, p.Token); err != nil {
			t.Errorf("token after the retention: %v", err)
		}
	}
}
