package activity_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"seckill/activity"
	"seckill/internal/testenv"
)

// loseShardKeys deletes every key of shard j of a (a flush of its master),
// or, stale, stamps its meta hash with another master's history (a restart
// from a snapshot).
func loseShardKeys(t *testing.T, env *testenv.Env, a *activity.Activity, j int, stale bool) {
	t.Helper()
	ctx := context.Background()
	meta := env.Store.ShardKeys(a.ID, a.Shards)[j].Meta
	if stale {
		if err := env.Redis.HSet(ctx, meta, "replid", "snapshot").Err(); err != nil {
			t.Fatal(err)
		}
		return
	}
	keys, err := env.Redis.Keys(ctx, strings.TrimSuffix(meta, "meta")+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatal(keys, err)
	}
	if err := env.Redis.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestShardedRebuildsOneAfterAnother: shard 1 is lost and rebuilt alone,
// then shard 2 comes back stale and is rebuilt alone, then shard 0 is lost
// and the whole activity is rebuilt; the sale sells on between them, and
// every token answered stays valid, the stock sold exactly once.
func TestShardedRebuildsOneAfterAnother(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	const stockN = 60
	a := openSharded(t, env, stockN, 2, 3)
	var answers []outcome
	n := 0
	round := func(users int) {
		t.Helper()
		var us []string
		for range users {
			n++
			us = append(us, fmt.Sprintf("u%d", n%45))
		}
		out := storm(t, env.Svc, a.ID, us)
		expectOnly(t, out, activity.ErrSoldOut, activity.ErrLimitReached)
		answers = append(answers, out...)
	}
	round(15)
	env.Reconcile(t)
	for _, step := range []struct {
		shard  int
		stale  bool
		epoch  int64
		epochs []int64
	}{{1, false, 2, []int64{1, 2, 1}}, {2, true, 3, []int64{1, 2, 3}}, {1, true, 4, []int64{1, 4, 3}}, {0, false, 5, nil}} {
		loseShardKeys(t, env, a, step.shard, step.stale)
		if rep := env.Reconcile(t); rep.Rebuilt != 1 {
			t.Fatalf("shard %d lost: rebuilt %d activities, want 1", step.shard, rep.Rebuilt)
		}
		got, err := env.Svc.Get(ctx, a.ID)
		if err != nil || got.Epoch != step.epoch || !slices.Equal(got.ShardEpochs, step.epochs) {
			t.Fatalf("after shard %d lost: epoch %d, shard epochs %v, %v; want %d %v", step.shard, got.Epoch, got.ShardEpochs, err, step.epoch, step.epochs)
		}
		for _, o := range answers {
			if o.err != nil {
				continue
			}
			if p, err := env.Svc.Token(ctx, o.p.Token); err != nil || p.Slot != o.p.Slot {
				t.Errorf("after shard %d lost: token of %s on slot %d: %+v %v", step.shard, o.user, o.p.Slot, p, err)
			}
		}
		round(10)
		env.Reconcile(t)
	}
	var us []string
	for i := range 60 {
		us = append(us, fmt.Sprintf("late%d", i))
	}
	after := storm(t, env.Svc, a.ID, us)
	expectOnly(t, after, activity.ErrSoldOut, activity.ErrLimitReached)
	checkSale(t, env, a, append(answers, after...), stockN)
}
