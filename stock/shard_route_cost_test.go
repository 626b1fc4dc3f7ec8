package stock_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"seckill/activity"
	"seckill/internal/testenv"
	"seckill/stock"
)

type countHook struct{ n atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}

// The round trips of a flood of joins of one shard: open (learned or
// not), and not open yet (no state).
func TestShardedOneShardClaimCost(t *testing.T) {
	ctx := context.Background()
	_, prefix := testenv.Redis(t)
	h := &countHook{}
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr()})
	rdb.AddHook(h)
	t.Cleanup(func() { rdb.Close() })
	opener := stock.New(rdb, stock.Options{Prefix: prefix, Lease: time.Minute})
	t.Cleanup(opener.Stop)
	a := &activity.Activity{ID: 9700, Stock: 100000, PerUserLimit: 1, State: activity.StateOpen, Shards: 1,
		BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour), CreatedAt: time.Now()}
	if err := opener.Preheat(ctx, a); err != nil {
		t.Fatal(err)
	}
	for _, learned := range []bool{true, false} {
		s := stock.New(rdb, stock.Options{Prefix: prefix, Lease: time.Minute})
		t.Cleanup(s.Stop)
		if learned {
			s.Learn(a)
		}
		c := activity.Claim{ActivityID: a.ID, UserID: "warm", ClaimID: fmt.Sprint("warm", learned)}
		_ = s.Claim(ctx, &c)
		h.n.Store(0)
		for i := range 200 {
			c := activity.Claim{ActivityID: a.ID, UserID: fmt.Sprintf("u%v%d", learned, i), ClaimID: fmt.Sprintf("c%v%d", learned, i)}
			if err := s.Claim(ctx, &c); err != nil {
				t.Fatal(err)
			}
		}
		if n := h.n.Load(); n > 200 {
			t.Errorf("open, learned %v: %d round trips for 200 claims, want one each", learned, n)
		}
	}
	s := stock.New(rdb, stock.Options{Prefix: prefix, Lease: time.Minute})
	t.Cleanup(s.Stop)
	h.n.Store(0)
	for i := range 200 {
		c := activity.Claim{ActivityID: 9701, UserID: fmt.Sprintf("n%d", i), ClaimID: fmt.Sprintf("n%d", i)}
		_ = s.Claim(ctx, &c)
	}
	if n := h.n.Load(); n > 401 {
		t.Errorf("no state: %d round trips for 200 claims, want the claim and one route read each", n)
	}
}
