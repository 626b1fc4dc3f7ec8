package stock_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"seckill/activity"
	"seckill/internal/testenv"
	"seckill/stock"

	"github.com/redis/go-redis/v9"
)

// go test -run '^$' -bench . -benchmem ./stock/

func benchStore(b *testing.B, opts ...func(*stock.Store, redis.UniversalClient)) (*stock.Store, *activity.Activity) {
	b.Helper()
	rdb, prefix := testenv.Redis(b)
	s := stock.New(rdb, stock.Options{Prefix: prefix, Lease: time.Minute})
	b.Cleanup(s.Stop)
	for _, o := range opts {
		o(s, rdb)
	}
	a := &activity.Activity{ID: 1, Stock: activity.MaxStock, PerUserLimit: 1, State: activity.StateOpen,
		BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour)}
	if err := s.Preheat(context.Background(), a); err != nil {
		b.Fatal(err)
	}
	return s, a
}

// benchClaims claims a slot for a new user on every iteration, in parallel,
// and hands the claim to then.
func benchClaims(b *testing.B, then func(context.Context, *stock.Store, activity.Claim) error,
	opts ...func(*stock.Store, redis.UniversalClient)) {
	s, a := benchStore(b, opts...)
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			id := strconv.FormatInt(n.Add(1), 10)
			c := activity.Claim{ActivityID: a.ID, UserID: "u" + id, ClaimID: "c" + id}
			if err := s.Claim(ctx, &c); err != nil {
				b.Fatal(err)
			}
			if err := then(ctx, s, c); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkClaimConfirm is the Redis side of a successful join: one claim
// and one confirm, each one script call.
func BenchmarkClaimConfirm(b *testing.B) {
	benchClaims(b, func(ctx context.Context, s *stock.Store, c activity.Claim) error {
		return s.Confirm(ctx, c, time.Now())
	})
}

// BenchmarkBatcherVsAutoPipeline compares the batcher with go-redis's own
// auto-pipelining on the same claims and confirms (see the batcher's
// comment for which one the store keeps, and why).
func BenchmarkBatcherVsAutoPipeline(b *testing.B) {
	confirm := func(ctx context.Context, s *stock.Store, c activity.Claim) error {
		return s.Confirm(ctx, c, time.Now())
	}
	b.Run("batcher", func(b *testing.B) { benchClaims(b, confirm) })
	b.Run("autopipeline", func(b *testing.B) {
		benchClaims(b, confirm, func(s *stock.Store, rdb redis.UniversalClient) {
			ap, err := rdb.AutoPipeline()
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = ap.Close() })
			s.AutoPipelined(ap)
		})
	})
}

// BenchmarkClaimRelease is a failed join: a claim given back.
func BenchmarkClaimRelease(b *testing.B) {
	benchClaims(b, func(ctx context.Context, s *stock.Store, c activity.Claim) error {
		return s.Release(ctx, c)
	})
}

// BenchmarkClaimSoldOut is the claim script answering sold out.
func BenchmarkClaimSoldOut(b *testing.B) {
	s, a := benchStore(b)
	a.Stock = 1
	if err := s.Preheat(context.Background(), a); err != nil {
		b.Fatal(err)
	}
	c := activity.Claim{ActivityID: a.ID, UserID: "first", ClaimID: "first"}
	if err := s.Claim(context.Background(), &c); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			c := activity.Claim{ActivityID: a.ID, UserID: "late", ClaimID: "late"}
			if err := s.Claim(ctx, &c); err != activity.ErrSoldOut {
				b.Fatal(err)
			}
		}
	})
}
