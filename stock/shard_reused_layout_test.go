package stock_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"seckill/activity"
	"seckill/stock"
)

// An open retried (a second preheat, by an instance that never learned the
// activity) after the route key and the shards hash entry were both lost:
// the shards' states are the activity's own and stay, and the sale goes on
// to exactly the stock.
func TestShardedPreheatAgainAfterRouteAndHashLost(t *testing.T) {
	for _, k := range []int{2, 3} {
		t.Run(strconv.Itoa(k), func(t *testing.T) {
			ctx := context.Background()
			id := int64(9400 + k)
			s, a := newShardedStore(t, id, 12, 1, k)
			rdb := s.Client()
			var sl sale
			for i, u := range usersOf(3, 0, k) {
				sl.join(ctx, t, s, a.ID, u, i)
			}
			for i, u := range usersOf(3, 1, k) {
				sl.join(ctx, t, s, a.ID, u, 10+i)
			}
			rdb.Del(ctx, routeKeyOf(s, id))
			rdb.HDel(ctx, prefixOf(s)+":shards", strconv.FormatInt(id, 10))
			fresh := stock.New(rdb, stock.Options{Prefix: prefixOf(s), Lease: time.Minute})
			t.Cleanup(fresh.Stop)
			if err := fresh.Preheat(ctx, a); err != nil {
				t.Fatal(err)
			}
			joiner := stock.New(rdb, stock.Options{Prefix: prefixOf(s), Lease: time.Minute})
			t.Cleanup(joiner.Stop)
			for j := range k {
				for i, u := range usersOf(20, j, k)[3:] {
					sl.join(ctx, t, joiner, a.ID, u, 100+i)
				}
			}
			sl.check(t, 12, 1)
		})
	}
}

// An ID used by three activities in turn (the database made again twice),
// of 3, then 2, then 1 shard, each preheated by a fresh instance: each
// clears what the one before left, and the last sells exactly its stock,
// to an instance that learned nothing.
func TestShardedIDReusedTwice(t *testing.T) {
	ctx := context.Background()
	const id = 9410
	first, a := newShardedStore(t, id, 30, 1, 3)
	rdb := first.Client()
	var old sale
	for j := range 3 {
		for i, u := range usersOf(2, j, 3) {
			old.join(ctx, t, first, id, u, i)
		}
	}
	created := a.CreatedAt
	for n, k := range []int{2, 1} {
		created = created.Add(time.Second)
		b := &activity.Activity{ID: id, Stock: int64(4 - n), PerUserLimit: 1, State: activity.StateOpen, Shards: k,
			BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour), CreatedAt: created}
		opener := stock.New(rdb, stock.Options{Prefix: prefixOf(first), Lease: time.Minute})
		t.Cleanup(opener.Stop)
		if err := opener.Preheat(ctx, b); err != nil {
			t.Fatal(err)
		}
		joiner := stock.New(rdb, stock.Options{Prefix: prefixOf(first), Lease: time.Minute})
		t.Cleanup(joiner.Stop)
		var sl sale
		for i := range 20 {
			sl.join(ctx, t, joiner, id, fmt.Sprintf("r%d-%d", n, i), i)
		}
		sl.check(t, b.Stock, 1)
	}
	// Nothing of the 3- and 2-shard activities left.
	for _, k := range []int{3, 2} {
		for j, ks := range first.ShardKeys(id, k) {
			if n, _ := rdb.Exists(ctx, ks.Meta, ks.Used).Result(); n > 0 {
				t.Errorf("shard %d of %d of an earlier activity left", j, k)
			}
		}
	}
}

// An ID used again while an instance still keeps the old activity's
// layout (read from its route key less than a minute ago): the old
// activity had 3 shards, the new one 2, and their first shards share a
// tag. The instance sends a user's join to the new activity's first shard,
// the user's home of 3 shards; an instance that reads the new route sends
// the same user to the home of 2 shards: the user holds two tokens, limit 1.
func TestShardedReusedIDStaleLayoutBreaksTheLimit(t *testing.T) {
	ctx := context.Background()
	id := int64(9420)
	old, a := newShardedStore(t, id, 30, 1, 3)
	rdb := old.Client()
	// The join instance has served the old activity: it read its route.
	stale := stock.New(rdb, stock.Options{Prefix: prefixOf(old), Lease: time.Minute})
	t.Cleanup(stale.Stop)
	c := activity.Claim{ActivityID: id, UserID: "warm", ClaimID: "warm"}
	if err := stale.Claim(ctx, &c); err != nil {
		t.Fatal(err)
	}
	b := &activity.Activity{ID: id, Stock: 10, PerUserLimit: 1, State: activity.StateOpen, Shards: 2,
		BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour), CreatedAt: a.CreatedAt.Add(time.Second)}
	opener := stock.New(rdb, stock.Options{Prefix: prefixOf(old), Lease: time.Minute})
	t.Cleanup(opener.Stop)
	if err := opener.Preheat(ctx, b); err != nil {
		t.Fatal(err)
	}
	user := ""
	for i := range 1000 {
		u := fmt.Sprintf("v%d", i)
		if stock.HomeShard(u, 3) == 0 && stock.HomeShard(u, 2) == 1 {
			user = u
			break
		}
	}
	fresh := stock.New(rdb, stock.Options{Prefix: prefixOf(old), Lease: time.Minute})
	t.Cleanup(fresh.Stop)
	var sl sale
	sl.join(ctx, t, stale, id, user, 1)
	sl.join(ctx, t, fresh, id, user, 2)
	if sl.perUser[user] > 1 {
		t.Errorf("user %s holds %d tokens of the new activity, limit 1 (slots %v)", user, sl.perUser[user], sl.perSlot)
	}
}
