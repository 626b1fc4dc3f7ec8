package stock_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"seckill/activity"
)

// usedMemory reads used_memory from INFO memory.
func usedMemory(tb testing.TB, rdb *redis.Client) int64 {
	tb.Helper()
	info := rdb.Info(context.Background(), "memory").Val()
	i := strings.Index(info, "used_memory:")
	v, _, _ := strings.Cut(info[i+len("used_memory:"):], "\r\n")
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// BenchmarkBytesPerSettledToken: what Redis keeps for a token once its
// record is settled valid in MySQL (claimed, confirmed, forgotten), on a
// private redis-server, over 20,000 tokens of distinct users: userIds of
// 6 to 10 characters ("user-0" to "user-19999") or of 64 (the longest),
// without and with an idempotency key of 36 characters (a UUID):
//
//	go test -run '^$' -bench BytesPerSettledToken -benchtime 1x ./stock/
func BenchmarkBytesPerSettledToken(b *testing.B) {
	for _, long := range []bool{false, true} {
		for _, withKey := range []bool{false, true} {
			name := map[bool]string{false: "ShortIDs", true: "LongIDs"}[long] +
				map[bool]string{false: "", true: "/IdempotencyKey"}[withKey]
			b.Run(name, func(b *testing.B) { benchSettledTokens(b, long, withKey) })
		}
	}
}

func benchSettledTokens(b *testing.B, long, withKey bool) {
	const tokens = 20_000
	for range b.N {
		_, rdb, s := privateStore(b)
		ctx := context.Background()
		a := &activity.Activity{ID: 1, Stock: tokens, PerUserLimit: 1, State: activity.StateOpen,
			BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour)}
		if err := s.Preheat(ctx, a); err != nil {
			b.Fatal(err)
		}
		before := usedMemory(b, rdb)
		for i := range tokens {
			id := strconv.Itoa(i)
			c := activity.Claim{ActivityID: a.ID, UserID: "user-" + id, ClaimID: "claim-" + id}
			if long {
				c.UserID = fmt.Sprintf("user-%059d", i)
			}
			if withKey {
				c.IdempotencyKey = fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
			}
			if err := s.Claim(ctx, &c); err != nil {
				b.Fatal(err)
			}
			if err := s.Confirm(ctx, c, time.Now()); err != nil {
				b.Fatal(err)
			}
			p := activity.Participation{ClaimID: c.ClaimID, UserID: c.UserID, Seq: c.Seq, IdempotencyKey: c.IdempotencyKey}
			if err := s.Forget(ctx, a.ID, []activity.Participation{p}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(usedMemory(b, rdb)-before)/tokens, "bytes/token")
	}
}
