package activity_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

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
// then shard 2 comes back stale and is rebuilt alone, then shard 1 stale
// again, then shard 0 lost, each rebuilt alone; then shards 0 and 2 are
// lost at once and the whole activity is rebuilt. The sale sells on
// between them, and every token answered stays valid, the stock sold
// exactly once.
func TestShardedRebuildsOneAfterAnother(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	const stockN = 60
	a := env.OpenSharded(t, stockN, 2, 3)
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
		shards []int
		stale  bool
		epoch  int64
		epochs []int64
	}{
		{[]int{1}, false, 2, []int64{1, 2, 1}},
		{[]int{2}, true, 3, []int64{1, 2, 3}},
		{[]int{1}, true, 4, []int64{1, 4, 3}},
		{[]int{0}, false, 5, []int64{5, 4, 3}},
		{[]int{0, 2}, false, 6, nil},
	} {
		for _, j := range step.shards {
			loseShardKeys(t, env, a, j, step.stale)
		}
		if rep := env.Reconcile(t); rep.Rebuilt != 1 {
			t.Fatalf("shards %v lost: rebuilt %d activities, want 1", step.shards, rep.Rebuilt)
		}
		got, err := env.Svc.Get(ctx, a.ID)
		if err != nil || got.Epoch != step.epoch || !slices.Equal(got.ShardEpochs, step.epochs) {
			t.Fatalf("after shards %v lost: epoch %d, shard epochs %v, %v; want %d %v", step.shards, got.Epoch, got.ShardEpochs, err, step.epoch, step.epochs)
		}
		for _, o := range answers {
			if o.err != nil {
				continue
			}
			if p, err := env.Svc.Token(ctx, o.p.Token); err != nil || p.Slot != o.p.Slot {
				t.Errorf("after shards %v lost: token of %s on slot %d: %+v %v", step.shards, o.user, o.p.Slot, p, err)
			}
		}
		round(10)
		env.Reconcile(t)
	}
	var us []string
	for i := range 60 {
		us = append(us, fmt.Sprintf("late%d", i))
	}
	var after []outcome
	for _, u := range us {
		after = append(after, boundedJoin(env, a.ID, u))
	}
	expectOnly(t, after, activity.ErrSoldOut, activity.ErrLimitReached)
	checkSale(t, env, a, append(answers, after...), stockN)
}

// boundedJoin joins as a client does, coming back on slots_in_flight, for
// a second at most.
func boundedJoin(env *testenv.Env, id int64, user string) outcome {
	p, err := env.Svc.Join(context.Background(), id, user, "")
	for i := 0; i < 200 && errors.Is(err, activity.ErrSlotsInFlight); i++ {
		time.Sleep(5 * time.Millisecond)
		p, err = env.Svc.Join(context.Background(), id, user, "")
	}
	return outcome{user, p, err}
}

// TestShardedRebuildKeepsATokenOnANumberThatMovedTwice: stock 30 over 3
// shards (1-10, 11-20, 21-30). Shard 2 sells out and takes numbers from
// shard 0; the process that moved them received them on shard 2 and died
// before it dropped the move from shard 0's journal (within the move grace,
// the job has not finished it yet). Shard 1 sells out and takes two of
// those numbers from shard 2; one of its users joins on one, answered 200,
// the record still pending. Shard 1 is lost and rebuilt alone: the token
// must stay valid, and the whole stock sell.
func TestShardedRebuildKeepsATokenOnANumberThatMovedTwice(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	const stockN = 30
	a := env.OpenSharded(t, stockN, 1, 3)
	keys := env.Store.ShardKeys(a.ID, 3)
	var answers []outcome
	join := func(user string) *activity.Participation {
		t.Helper()
		o := boundedJoin(env, a.ID, user)
		if o.err != nil {
			t.Fatalf("join of %s: %v", user, o.err)
		}
		answers = append(answers, o)
		return o.p
	}
	two, zero, one := testenv.HomedOn("two", 11, 2, 3), testenv.HomedOn("zero", 2, 0, 3), testenv.HomedOn("one", 11, 1, 3)
	for _, u := range two {
		join(u) // the last one takes numbers from shard 0
	}
	owns, err := env.Redis.Get(ctx, keys[2].Owns).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	var moved []int64
	for n := int64(1); n <= 10; n++ {
		if n/8 < int64(len(owns)) && owns[n/8]&(0x80>>(n%8)) != 0 {
			moved = append(moved, n)
		}
	}
	if len(moved) == 0 {
		t.Fatal("shard 2 took no numbers from shard 0")
	}
	// The mover of 0 -> 2 died after the receive: its entry stays in shard
	// 0's journal, received by shard 2.
	var runs []string
	for _, n := range moved {
		runs = append(runs, fmt.Sprintf("%d %d", n, n))
	}
	entry := fmt.Sprintf("2:1:%d:0:%s", time.Now().Add(-3*time.Second).Unix(), strings.Join(runs, " "))
	if err := env.Redis.HSet(ctx, keys[0].Moving, "died", entry).Err(); err != nil {
		t.Fatal(err)
	}
	if err := env.Redis.SAdd(ctx, keys[2].Moved, "died").Err(); err != nil {
		t.Fatal(err)
	}
	for _, u := range zero {
		join(u)
	}
	var onMoved *activity.Participation
	for _, u := range one {
		p := join(u) // the last ones take numbers from shard 2
		if slices.Contains(moved, p.Slot) {
			onMoved = p
		}
	}
	if onMoved == nil {
		t.Fatalf("no join of shard 1 took one of the numbers %v", moved)
	}
	loseShardKeys(t, env, a, 1, false)
	if rep := env.Reconcile(t); rep.Rebuilt != 1 {
		t.Fatalf("rebuilt %d activities, want 1", rep.Rebuilt)
	}
	if p, err := env.Svc.Token(ctx, onMoved.Token); err != nil || p.Slot != onMoved.Slot {
		t.Errorf("the token of %s on number %d, which came from shard 0 by way of shard 2: %+v, %v", onMoved.UserID, onMoved.Slot, p, err)
	}
	if p, err := env.Repo.Participation(ctx, onMoved.Token); err != nil || p.Status != activity.RecordValid {
		t.Errorf("its record: %+v, %v; want valid", p, err)
	}
	// The job finishes the stale move once the move grace is over: shard 2
	// received it already.
	for wait := time.Now().Add(10 * time.Second); time.Now().Before(wait); time.Sleep(100 * time.Millisecond) {
		env.Reconcile(t)
		if n, _ := env.Redis.HLen(ctx, keys[0].Moving).Result(); n == 0 {
			break
		}
	}
	var us []string
	for i := range 12 {
		us = append(us, fmt.Sprintf("late%d", i))
	}
	var after []outcome
	for _, u := range us {
		after = append(after, boundedJoin(env, a.ID, u))
	}
	expectOnly(t, after, activity.ErrSoldOut, activity.ErrLimitReached)
	checkSale(t, env, a, append(answers, after...), stockN)
}
