package stock_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"seckill/activity"
)

// TestBatchLoadsTheScriptsAgain: claims sent together in one pipeline after
// Redis forgot its scripts (a restart, SCRIPT FLUSH) are each sent again
// with the script's source, and every caller gets its own slot. Redis is
// paused while the batcher's workers each take one confirm, sent alone,
// and the claims queue up behind them; once Redis goes on, the workers find
// the claims waiting and send them as pipelines, the claim script unknown.
func TestBatchLoadsTheScriptsAgain(t *testing.T) {
	ctx := context.Background()
	srv, rdb, s := privateStore(t)
	const n = 64
	a := &activity.Activity{ID: 1, Stock: n, PerUserLimit: 1, State: activity.StateOpen,
		BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour)}
	if err := s.Preheat(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	var busy sync.WaitGroup
	for i := range 8 { // one per worker of the batcher
		busy.Go(func() {
			_ = s.Confirm(ctx, activity.Claim{ActivityID: a.ID, UserID: "nobody", ClaimID: fmt.Sprint("x", i)}, time.Now())
		})
		time.Sleep(10 * time.Millisecond) // taken alone by an idle worker
	}
	var wg sync.WaitGroup
	slots := make([]int64, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			c := activity.Claim{ActivityID: a.ID, UserID: fmt.Sprint("u", i), ClaimID: fmt.Sprint("c", i)}
			errs[i] = s.Claim(ctx, &c)
			slots[i] = c.Slot
		})
	}
	time.Sleep(200 * time.Millisecond) // the claims queue up
	srv.Resume()
	wg.Wait()
	busy.Wait()
	seen := map[int64]bool{}
	for i := range n {
		if errs[i] != nil || slots[i] < 1 || slots[i] > n || seen[slots[i]] {
			t.Fatalf("claim %d: slot %d, %v", i, slots[i], errs[i])
		}
		seen[slots[i]] = true
	}
}
