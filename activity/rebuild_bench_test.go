package activity_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"seckill/activity"
	"seckill/internal/testenv"
)

// BenchmarkRebuild rebuilds the Redis state of an activity with many valid
// records (SECKILL_BENCH_RECORDS, default 100,000) and reports the time and
// the peak heap of the rebuild, and the time of a job cycle after it:
//
//	SECKILL_BENCH_RECORDS=1000000 go test -run '^$' -bench Rebuild -benchtime 1x -timeout 30m ./activity/
func BenchmarkRebuild(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("SECKILL_BENCH_RECORDS")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	env := testenv.New(b, testenv.Options{})
	a := env.OpenActivity(b, int64(n), 1)
	const batch = 2000
	issued := time.Now().UTC().Truncate(time.Millisecond)
	for from := 1; from <= n; from += batch {
		ps := make([]activity.Participation, 0, batch)
		for slot := from; slot < from+batch && slot <= n; slot++ {
			var nonce [12]byte
			copy(nonce[:], strconv.Itoa(slot))
			ps = append(ps, activity.Participation{Token: env.Signer.Sign(a.ID, int64(slot), nonce), ActivityID: a.ID,
				Slot: int64(slot), UserID: fmt.Sprintf("u%d", slot), ClaimID: fmt.Sprintf("%016d", slot), Epoch: 1,
				Seq: int64(slot), IssuedAt: issued, Status: activity.RecordValid})
		}
		if err := env.Repo.RecordBatch(ctx, ps); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		testenv.DeletePrefix(env.Redis, env.Prefix)
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		var peak atomic.Uint64
		done := make(chan struct{})
		go func() {
			var m runtime.MemStats
			for {
				select {
				case <-done:
					return
				case <-time.After(20 * time.Millisecond):
				}
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak.Load() {
					peak.Store(m.HeapInuse)
				}
			}
		}()
		start := time.Now()
		rep, err := env.Job.Cycle(ctx)
		close(done)
		if err != nil || rep.Rebuilt != 1 {
			b.Fatalf("rebuild: %+v %v", rep, err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/rebuild")
		b.ReportMetric(float64(peak.Load()-min(peak.Load(), base.HeapInuse))/(1<<20), "MiB-peak-heap")
		if c, ok, _ := env.Store.Counters(ctx, a.ID); !ok || c.Issued != int64(n) {
			b.Fatalf("rebuilt counters %+v %v, want %d issued", c, ok, n)
		}
		// A cycle of the job on the live activity with its n records.
		start = time.Now()
		if _, err := env.Job.Cycle(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds()*1000, "ms/cycle")
	}
}
