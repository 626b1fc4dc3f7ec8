package stock_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"seckill/activity"
	"seckill/internal/testenv"
	"seckill/stock"
)

// A sharded draft whose open failed after shard 0's preheat landed (the
// next shard's master did not answer) keeps a state in Redis. Asked
// whether it was opened once while the master of shard 0 does not answer,
// Preheated answers unavailable (each read of its pipeline is checked, the
// first one answering nil aside), and checkOpenedOnce refuses the shards
// or a lower of the stock.
func TestShardedPreheatedWhileAMasterIsDown(t *testing.T) {
	ctx := context.Background()
	c := testenv.ClusterWithReplicas(t)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), ReadTimeout: 300 * time.Millisecond,
		WriteTimeout: 300 * time.Millisecond, MaxRetries: -1, MaxRedirects: 1})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error { return c.Ping(ctx).Err() }); err != nil {
		t.Fatal(err)
	}
	s := stock.New(rdb, stock.Options{Prefix: "r5", Lease: time.Minute})
	t.Cleanup(s.Stop)
	// An ID whose own tag is on another master than its shard 0 of 3.
	var id int64
	for id = 9600; ; id++ {
		if testenv.MasterOf(t, rdb, s.KeysOf(id).Meta) != testenv.MasterOf(t, rdb, s.ShardKeys(id, 3)[0].Meta) {
			break
		}
	}
	a := &activity.Activity{ID: id, Stock: 30, PerUserLimit: 1, State: activity.StateApproved, Shards: 3,
		BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour), CreatedAt: time.Now().Truncate(time.Millisecond)}
	if err := s.Preheat(ctx, a); err != nil {
		t.Fatal(err)
	}
	// Only shard 0's preheat landed: the others and the route did not.
	for _, k := range s.ShardKeys(id, 3)[1:] {
		for _, key := range []string{k.Meta, k.Used, k.Issued, k.Slots, k.Buckets} {
			rdb.Del(ctx, key)
		}
	}
	rdb.Del(ctx, routeKeyOf(s, id))
	rdb.HDel(ctx, "r5:shards", strconv.FormatInt(id, 10))
	if ok, err := s.Preheated(ctx, a); err != nil || !ok {
		t.Fatalf("preheated with every master up: %v, %v", ok, err)
	}
	down := c.Node(testenv.MasterOf(t, rdb, s.ShardKeys(id, 3)[0].Meta))
	down.Pause()
	ok, err := s.Preheated(ctx, a)
	down.Resume()
	if err == nil && !ok {
		t.Errorf("preheated while shard 0's master is down: false and no error; a shards change or a lower would be let through")
	}
	// What the lower let through comes to: the open at 10 fails on every
	// try (shard 0 keeps 30), and once the stock is raised back to 30 the
	// shards made at 10 own numbers that shard 0 owns too.
	lowered := *a
	lowered.Stock = 10
	if err := s.Preheat(ctx, &lowered); err != nil {
		t.Logf("the open at the lowered stock: %v", err)
	}
	back := *a
	if err := s.Preheat(ctx, &back); err != nil {
		t.Fatal(err)
	}
	var sl sale
	for u := range 100 {
		sl.join(ctx, t, s, id, fmt.Sprintf("w%d", u), 0)
	}
	sl.check(t, 30, 1)
}
