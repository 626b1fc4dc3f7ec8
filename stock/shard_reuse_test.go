package stock_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"seckill/activity"
	"seckill/internal/testenv"
	"seckill/stock"
)

// An activity ID used again (the database made again while Redis kept its
// keys) by a sharded activity of another number of shards than the old
// sharded one: the new preheat clears "{id}" and the new layout's tags, and
// overwrites the route, but leaves the old layout's shards whose tags are
// not the new ones, live and open. A store that still keeps the old layout
// (it joined users of the old activity a moment ago) sells the old stock
// as the new activity's, past the new stock; and the new activity's Drop
// leaves the old shards for good.
func TestShardedReusedIDOtherShardCountLeavesOldShards(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	probe := stock.New(rdb, stock.Options{Prefix: prefix})
	t.Cleanup(probe.Stop)
	id := int64(9500)
	disjoint := func(id int64) bool {
		for _, o := range probe.ShardKeys(id, 2) {
			for _, n := range probe.ShardKeys(id, 3) {
				if o.Meta == n.Meta {
					return false
				}
			}
		}
		return true
	}
	for ; !disjoint(id); id++ {
	}
	old := stock.New(rdb, stock.Options{Prefix: prefix, Lease: time.Minute})
	t.Cleanup(old.Stop)
	oldA := &activity.Activity{ID: id, Stock: 20, PerUserLimit: 1, State: activity.StateOpen, Shards: 2,
		BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour), CreatedAt: time.Now()}
	if err := old.Preheat(ctx, oldA); err != nil {
		t.Fatal(err)
	}
	c := activity.Claim{ActivityID: id, UserID: "old-user", ClaimID: "old-claim"}
	if err := old.Claim(ctx, &c); err != nil {
		t.Fatal(err)
	}
	if err := old.Confirm(ctx, c, time.Now()); err != nil {
		t.Fatal(err)
	}

	// The new activity, 3 shards, stock 3, opened by another instance.
	newA := *oldA
	newA.Shards, newA.Stock, newA.CreatedAt = 3, 3, time.Now().Add(time.Second)
	opener := stock.New(rdb, stock.Options{Prefix: prefix, Lease: time.Minute})
	t.Cleanup(opener.Stop)
	opener.Learn(&newA)
	if err := opener.Preheat(ctx, &newA); err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, k := range probe.ShardKeys(id, 2) {
		if n, _ := rdb.Exists(ctx, k.Meta).Result(); n > 0 {
			left = append(left, k.Meta)
		}
	}
	if len(left) > 0 {
		t.Errorf("the old activity's shards %v are left after the new activity's preheat over 3 shards", left)
	}

	// The instance that joined for the old activity a moment ago joins
	// for the new one.
	won := 0
	for i := range 10 {
		c := activity.Claim{ActivityID: id, UserID: fmt.Sprintf("u%d", i), ClaimID: fmt.Sprintf("c%d", i)}
		if err := old.Claim(ctx, &c); err != nil {
			continue
		}
		if err := old.Confirm(ctx, c, time.Now()); err == nil {
			won++
		}
	}
	if won > int(newA.Stock) {
		t.Errorf("%d tokens of the new activity of stock %d (sold from the old activity's shards)", won, newA.Stock)
	}

	if err := opener.Drop(ctx, id); err != nil {
		t.Fatal(err)
	}
	for j, k := range probe.ShardKeys(id, 2) {
		tag := strings.TrimSuffix(k.Meta, "meta")
		if keys := testenv.Keys(t, rdb, tag+"*"); len(keys) != 0 {
			t.Errorf("old shard %d keeps %d keys after the new activity's Drop, e.g. %v", j, len(keys), keys[0])
		}
	}
}

// The counted joins of an activity of a reused ID whose number of shards
// changed, one to sharded or sharded to one: the new preheat clears the
// old state but drops the sale keys of the new layout's first tag, not the
// old one's, so the old turned-away counts, joins and winners stay after
// the new activity's Drop, for good (and a later activity of the old
// layout takes them up as its own: its preheat finds no old meta there).
func TestShardedReusedIDLeavesOldSale(t *testing.T) {
	for _, c := range []struct{ old, new int }{{1, 2}, {2, 1}} {
		t.Run(fmt.Sprintf("%dto%d", c.old, c.new), func(t *testing.T) {
			ctx := context.Background()
			rdb, prefix := testenv.Redis(t)
			id := int64(9600 + c.old)
			old := stock.New(rdb, stock.Options{Prefix: prefix, Lease: time.Minute})
			t.Cleanup(old.Stop)
			oldA := &activity.Activity{ID: id, Stock: 20, PerUserLimit: 1, State: activity.StateOpen, Shards: c.old,
				BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour), CreatedAt: time.Now()}
			if err := old.Preheat(ctx, oldA); err != nil {
				t.Fatal(err)
			}
			now := time.Now().Unix()
			if _, err := old.AddJoins(ctx, []activity.JoinCounts{{ActivityID: id,
				TurnedAway: activity.TurnedAway{SoldOut: 7}, Seconds: []activity.SecondCount{{At: now, Joins: 9, Winners: 2}}}}); err != nil {
				t.Fatal(err)
			}
			if tu, ok, err := old.Turnout(ctx, id); err != nil || !ok || tu.TurnedAway.SoldOut != 7 {
				t.Fatalf("old turnout %+v %v %v", tu, ok, err)
			}
			oldTag := strings.TrimSuffix(old.ShardKeys(id, c.old)[0].Meta, "meta")

			newA := *oldA
			newA.Shards, newA.Stock, newA.CreatedAt = c.new, 3, time.Now().Add(time.Second)
			opener := stock.New(rdb, stock.Options{Prefix: prefix, Lease: time.Minute})
			t.Cleanup(opener.Stop)
			opener.Learn(&newA)
			if err := opener.Preheat(ctx, &newA); err != nil {
				t.Fatal(err)
			}
			if tu, _, _ := opener.Turnout(ctx, id); tu.TurnedAway.SoldOut != 0 || tu.PeakJoins != 0 {
				t.Errorf("the new activity's turnout %+v, want nothing counted", tu)
			}
			if err := opener.Drop(ctx, id); err != nil {
				t.Fatal(err)
			}
			if keys := testenv.Keys(t, rdb, oldTag+"*"); len(keys) != 0 {
				t.Errorf("the old activity's tag %s keeps %v after the new activity's Drop", oldTag, keys)
			}
		})
	}
}
