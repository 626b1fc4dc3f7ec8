package stock_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"seckill/activity"
	"seckill/stock"
)

// worstLayout preheats an activity of stockN slots on a private Redis and
// lays it out as the worst case for a claim: every slot issued but one, the
// hole at hole (not the last), and the used counter at stockN-1, so that the
// INCR hands out the last number, which is issued, and the claim must find
// the hole.
func worstLayout(tb testing.TB, stockN, hole int64) (*stock.Store, *activity.Activity, *redis.Client) {
	tb.Helper()
	_, rdb, s := privateStore(tb)
	a := &activity.Activity{ID: 1, Stock: stockN, PerUserLimit: 1, State: activity.StateOpen,
		BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour)}
	ctx := context.Background()
	if err := s.Preheat(ctx, a); err != nil {
		tb.Fatal(err)
	}
	k := s.KeysOf(a.ID)
	// Bits 0..stockN set (bit 0 is no slot), then the hole cleared.
	full := strings.Repeat("\xff", int(stockN/8)+1)
	if err := rdb.Set(ctx, k.Slots, full, 0).Err(); err != nil {
		tb.Fatal(err)
	}
	for b := stockN + 1; b < int64(len(full))*8; b++ {
		rdb.SetBit(ctx, k.Slots, b, 0)
	}
	rdb.SetBit(ctx, k.Slots, hole, 0)
	// used counts the issued slots; the next INCR hands out the last
	// number, which is issued: a collision.
	rdb.Set(ctx, k.Used, stockN-1, 0)
	rdb.Set(ctx, k.Issued, stockN-1, 0)
	return s, a, rdb
}

// TestClaimFindsTheLastHoleAtAMillionSlots: all but one of 1,000,000 slots
// issued, the hole far from where the counter points: the claim takes the
// hole, and a claim after it is sold out. (How long it takes:
// BenchmarkClaimWorstLayout.)
func TestClaimFindsTheLastHoleAtAMillionSlots(t *testing.T) {
	const stockN, hole = 1_000_000, 999_990
	s, a, _ := worstLayout(t, stockN, hole)
	ctx := context.Background()
	c := activity.Claim{ActivityID: a.ID, UserID: "last", ClaimID: "last"}
	start := time.Now()
	if err := s.Claim(ctx, &c); err != nil {
		t.Fatalf("claim of the last hole: %v", err)
	}
	t.Logf("claim of the one free slot of %d: %v", stockN, time.Since(start))
	if c.Slot != hole {
		t.Fatalf("claimed slot %d, want the hole %d", c.Slot, hole)
	}
	next := activity.Claim{ActivityID: a.ID, UserID: "next", ClaimID: "next"}
	if err := s.Claim(ctx, &next); err == nil {
		t.Fatalf("a claim after the last slot got slot %d", next.Slot)
	}
}

// BenchmarkClaimWorstLayout claims the one free slot of 10,000,000 (every
// other issued, the counter pointing at an issued slot, the hole near the
// end), then gives it back, again and again. Redis's own time per claim is
// read from INFO commandstats, and the slowest call from the slow log, which
// logs every call here (us-slowest):
//
//	go test -run '^$' -bench ClaimWorstLayout -benchtime 200x ./stock/
func BenchmarkClaimWorstLayout(b *testing.B) {
	const stockN, hole = activity.MaxStock, activity.MaxStock - 7
	s, a, rdb := worstLayout(b, stockN, hole)
	ctx := context.Background()
	k := s.KeysOf(a.ID)
	rdb.ConfigResetStat(ctx)
	rdb.ConfigSet(ctx, "slowlog-log-slower-than", "0")
	rdb.ConfigSet(ctx, "slowlog-max-len", "1024")
	rdb.SlowLogReset(ctx)
	b.ResetTimer()
	for i := range b.N {
		id := "u" + strconv.Itoa(i)
		c := activity.Claim{ActivityID: a.ID, UserID: id, ClaimID: id}
		if err := s.Claim(ctx, &c); err != nil || c.Slot != hole {
			b.Fatalf("claim %d: slot %d %v", i, c.Slot, err)
		}
		if err := s.Release(ctx, c); err != nil {
			b.Fatal(err)
		}
		rdb.Set(ctx, k.Used, stockN-1, 0) // the counter back on an issued slot
	}
	b.StopTimer()
	slowest := time.Duration(0)
	for _, e := range rdb.SlowLogGet(ctx, -1).Val() {
		if len(e.Args) > 0 && strings.EqualFold(e.Args[0], "evalsha") {
			slowest = max(slowest, e.Duration)
		}
	}
	b.ReportMetric(float64(slowest.Microseconds()), "us-slowest")
	stats := rdb.Info(ctx, "commandstats").Val()
	for _, line := range strings.Split(stats, "\r\n") {
		if strings.HasPrefix(line, "cmdstat_evalsha:") {
			b.Log(line, " (claim and release, averaged)")
		}
	}
}
