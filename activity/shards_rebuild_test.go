package activity_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"seckill/activity"
	"seckill/internal/testenv"
	"seckill/stock"
)

// TestShardRebuildRestoresTheSale: stock 30 over 3 shards, limit 2. Redis
// loses shard 1 (its keys, as a flush of its master does) with two tokens
// of its users valid, one joined with an Idempotency-Key, and one
// confirmed whose record is still pending. Until the job rebuilds it, its
// users are refused and the other shards' users get tokens; the job
// rebuilds that shard alone, in a new epoch of its own: every token
// verifies, the pending one is valid, the retry gets its first answer, and
// the sale then sells exactly the stock.
func TestShardRebuildRestoresTheSale(t *testing.T) {
	ctx := context.Background()
	var during func()
	env := testenv.New(t, testenv.Options{Slots: func(s *stock.Store) activity.SlotStore {
		return &whileRebuilt{SlotStore: s, during: func() { during() }}
	}})
	a := env.OpenSharded(t, 30, 2, 3)
	var answers []outcome
	join := func(user, key string) *activity.Participation {
		t.Helper()
		p, err := env.Svc.Join(ctx, a.ID, user, key)
		if err != nil {
			t.Fatalf("join of %s: %v", user, err)
		}
		answers = append(answers, outcome{user, p, nil})
		return p
	}
	lost := testenv.HomedOn("lost", 4, 1, 3)
	live := append(testenv.HomedOn("zero", 3, 0, 3), testenv.HomedOn("two", 3, 2, 3)...)
	join(lost[0], "")
	join(lost[0], "")
	retried := join(lost[1], "key")
	for _, u := range live[:4] {
		join(u, "")
	}
	env.Reconcile(t)
	pending := join(lost[2], "")
	join(live[0], "")

	meta := env.Store.ShardKeys(a.ID, 3)[1].Meta
	keys, err := env.Redis.Keys(ctx, strings.TrimSuffix(meta, "meta")+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatal(keys, err)
	}
	if err := env.Redis.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Svc.Join(ctx, a.ID, lost[3], ""); !errors.Is(err, activity.ErrUnavailable) {
		t.Fatalf("join on the lost shard: %v, want unavailable", err)
	}
	join(live[4], "") // the other shards go on
	// ... and go on while the lost one is rebuilt.
	during = func() {
		for _, u := range live[5:] {
			join(u, "")
		}
		if _, err := env.Svc.Join(ctx, a.ID, lost[3], ""); !errors.Is(err, activity.ErrUnavailable) {
			t.Errorf("join on the lost shard during its rebuild: %v, want unavailable", err)
		}
	}

	if rep := env.Reconcile(t); rep.Rebuilt != 1 {
		t.Fatalf("rebuilt %d activities, want 1", rep.Rebuilt)
	}
	got, err := env.Svc.Get(ctx, a.ID)
	if err != nil || got.Epoch != 2 || !slices.Equal(got.ShardEpochs, []int64{1, 2, 1}) {
		t.Fatalf("after the rebuild: %+v %v, want epoch 2 and shard epochs [1 2 1]", got, err)
	}
	for _, o := range answers {
		p, err := env.Svc.Token(ctx, o.p.Token)
		if err != nil || p.UserID != o.user || p.Slot != o.p.Slot {
			t.Errorf("token of %s on slot %d: %+v, %v", o.user, o.p.Slot, p, err)
		}
	}
	if p, err := env.Repo.Participation(ctx, pending.Token); err != nil || p.Status != activity.RecordValid {
		t.Errorf("the record pending at the loss: %+v, %v; want valid", p, err)
	}
	var le *activity.LimitError
	if _, err := env.Svc.Join(ctx, a.ID, lost[0], ""); !errors.As(err, &le) || len(le.Held) != 2 {
		t.Fatalf("a third join on the rebuilt shard: %v, want limit reached listing two tokens", err)
	}
	if again, err := env.Svc.Join(ctx, a.ID, lost[1], "key"); err != nil || again.Token != retried.Token {
		t.Fatalf("the retry: %+v, %v; want its first answer %s", again, err, retried.Token)
	}
	var users []string
	for i := range 40 {
		users = append(users, fmt.Sprintf("after%d", i))
	}
	after := storm(t, env.Svc, a.ID, users)
	expectOnly(t, after, activity.ErrSoldOut)
	checkSale(t, env, a, append(answers, after...), 30)
}

// whileRebuilt runs during as a rebuild of an activity's state begins to
// write it: of one shard, or of the whole activity.
type whileRebuilt struct {
	activity.SlotStore
	during func()
}

func (w *whileRebuilt) Rebuild(ctx context.Context, a *activity.Activity, next func(context.Context) ([]activity.Participation, error), held *activity.Lock) error {
	w.during()
	return w.SlotStore.Rebuild(ctx, a, next, held)
}

func (w *whileRebuilt) BeginShardRebuild(ctx context.Context, a *activity.Activity, epoch int64, held *activity.Lock) (activity.ShardRebuild, error) {
	r, err := w.SlotStore.BeginShardRebuild(ctx, a, epoch, held)
	if r == nil || err != nil {
		return r, err
	}
	return &shardRebuiltWhile{ShardRebuild: r, during: w.during}, nil
}

type shardRebuiltWhile struct {
	activity.ShardRebuild
	during func()
}

func (r *shardRebuiltWhile) Rebuild(ctx context.Context, a *activity.Activity, next func(context.Context) ([]activity.Participation, error)) error {
	r.during()
	return r.ShardRebuild.Rebuild(ctx, a, next)
}
