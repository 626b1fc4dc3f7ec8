package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"seckill/internal/testenv"
)

// TestRetention: once an activity has been closed for SECKILL_RETENTION,
// the job deletes every key of it; its tokens and stats still answer, from
// MySQL, and a join answers not_open.
func TestRetention(t *testing.T) {
	b := newBroker(t)
	cfg := kafkaConfig(t, b)
	cfg.Retention = time.Second
	app := startApp(t, cfg)
	id := openActivity(t, app, 5, 1)
	got := tokens(t, crowd(app.URL(), id, users("u", 3), 3))
	if len(got) != 3 {
		t.Fatalf("%d tokens, want 3", len(got))
	}
	converged(t, app, id, 5, 3)
	if code := send(t, app, "POST", fmt.Sprintf("/api/v1/admin/activities/%d/close", id), "", nil); code != http.StatusOK {
		t.Fatalf("close: %d", code)
	}
	pattern := fmt.Sprintf("%s:{%d}:*", cfg.RedisPrefix, id)
	eventually(t, 10*time.Second, "the closed activity's keys deleted", func() bool {
		return len(testenv.Keys(t, app.rdb, pattern)) == 0
	})
	if listed, err := app.Store.Listed(context.Background()); err != nil || len(listed) != 0 {
		t.Fatalf("still listed as live in Redis: %v %v", listed, err)
	}
	checkTokens(t, app.URL(), got)
	if s := activityStats(t, app, id); s.Issued != 3 || s.Recorded != 3 || s.Claimed != 3 || s.InFlight != 0 {
		t.Fatalf("stats after the retention %+v, want 3 issued and recorded", s)
	}
	if a := joinHTTP(app.URL(), id, "late"); a.status != http.StatusConflict || a.code != "not_open" {
		t.Fatalf("join after the retention: %d %s, want 409 not_open", a.status, a.code)
	}
}
