package activity_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"seckill/activity"
)

// As TestShardedFailedOpenThenShardsEdited, but Redis then loses what
// Preheated reads of the draft (its entry in the live list, its route key,
// its entry in the shards hash: on a cluster, the masters of "{id}",
// "<prefix>:live" and "<prefix>:shards"; here by eviction), while the
// shards themselves, on other masters, survive with the tokens they issued.
// The edit of the shards is then let through, and the new layout is
// preheated beside the old shards: it sells the numbers sold before again.
func TestShardedFailedOpenBookkeepingLostThenShardsEdited(t *testing.T) {
	for _, c := range []struct{ from, to int }{{2, 2}, {2, 1}, {2, 3}, {3, 2}} {
		t.Run(fmt.Sprintf("%dto%d", c.from, c.to), func(t *testing.T) {
			ctx := context.Background()
			env, q := failedOpenEnv(t)
			name, stockN, limit, shards := "x", int64(6), int64(1), c.from
			a := failedOpen(t, env, activity.Fields{Name: &name, Stock: &stockN, PerUserLimit: &limit, Shards: &shards})
			var tokens []*activity.Participation
			join := func(user string) {
				if p, err := env.Svc.Join(ctx, a.ID, user, ""); err == nil {
					tokens = append(tokens, p)
				}
			}
			for i := range 3 {
				join(fmt.Sprintf("early%d", i))
			}
			if err := env.Svc.StoreEvents(ctx, q.drain()); err != nil {
				t.Fatal(err)
			}
			early := len(tokens)
			if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionDraft); err != nil {
				t.Fatal(err)
			}
			// Lost: the bookkeeping Preheated reads. The shards' states stay.
			ids := strconv.FormatInt(a.ID, 10)
			meta := env.Store.KeysOf(a.ID).Meta
			route := meta[:len(meta)-len("meta")] + "route"
			if err := env.Redis.SRem(ctx, env.Prefix+":live", ids).Err(); err != nil {
				t.Fatal(err)
			}
			if err := env.Redis.HDel(ctx, env.Prefix+":shards", ids).Err(); err != nil {
				t.Fatal(err)
			}
			if err := env.Redis.Del(ctx, route, meta).Err(); err != nil {
				t.Fatal(err)
			}
			left := 0
			for _, k := range env.Store.ShardKeys(a.ID, c.from) {
				if n, _ := env.Redis.Exists(ctx, k.Meta).Result(); n > 0 {
					left++
				}
			}
			if left != c.from {
				t.Fatalf("%d of %d shards' states left", left, c.from)
			}
			shards = c.to
			_, err := env.Svc.Update(ctx, a.ID, activity.Fields{Shards: &shards})
			if (err != nil) != (c.from != c.to) {
				t.Fatalf("edit of the shards from %d to %d of a draft whose shards keep its state: %v", c.from, c.to, err)
			}
			if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionApprove); err != nil {
				t.Fatal(err)
			}
			if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionOpen); err != nil {
				t.Fatalf("the open retried: %v", err)
			}
			for i := range 20 {
				join(fmt.Sprintf("late%d", i))
			}
			if err := env.Svc.StoreEvents(ctx, q.drain()); err != nil {
				t.Fatal(err)
			}
			t.Logf("early %d, all %d", early, len(tokens))
			env.Reconcile(t)
			n, _ := env.Repo.CountRecorded(ctx, a.ID)
			if n > stockN || len(tokens) > int(stockN) {
				t.Errorf("%d tokens answered (%d before the edit) and %d valid records for stock %d", len(tokens), early, n, stockN)
			}
			slots := map[int64]int{}
			for _, p := range tokens {
				slots[p.Slot]++
			}
			for slot, k := range slots {
				if k > 1 {
					t.Errorf("slot %d handed out %d times", slot, k)
				}
			}
		})
	}
}
