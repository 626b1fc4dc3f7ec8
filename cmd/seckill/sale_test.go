package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"seckill/activity"
	"seckill/internal/testenv"
)

type turnedAway struct{ SoldOut, LimitReached, Busy int64 }

type saleActivity struct {
	ID        int64
	State     string
	BeginAt   time.Time
	EndAt     time.Time
	UpdatedAt time.Time
	Stats     *struct {
		Claimed, InFlight, Issued *int64
		TurnedAway                *turnedAway
		Recorded, Surplus         *int64
		ReconciledAt              *time.Time
	}
	Summary     *saleSummary
	Unavailable []string
	ReadAt      *time.Time
}

type saleSummary struct {
	Winners            int64
	TurnedAway         turnedAway
	PeakJoinsPerSecond int64
	PeakAt             *time.Time
	StartedAt, EndedAt time.Time
	DurationSeconds    int64
}

type timeline struct {
	Seconds []struct {
		At             time.Time
		Joins, Winners int64
	}
	Peak *struct {
		At    time.Time
		Joins int64
	}
}

func getSale(t *testing.T, app *App, id int64) (int, saleActivity, string) {
	t.Helper()
	code, body := adminCall(t, app, "GET", fmt.Sprintf("/api/v1/admin/activities/%d", id), "")
	var a saleActivity
	if code == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
	}
	return code, a, body
}

func getTimeline(t *testing.T, app *App, id int64) timeline {
	t.Helper()
	var tl timeline
	if code := send(t, app, "GET", fmt.Sprintf("/api/v1/admin/activities/%d/timeline?seconds=3600", id), "", &tl); code != http.StatusOK {
		t.Fatalf("timeline: %d", code)
	}
	return tl
}

// TestSaleNumbers: a storm of joins on a small stock is counted by outcome
// (winners = stock, sold out the rest, limit reached counted), the timeline
// adds up to the same joins, the close writes the summary, and the summary
// is still there once the job has deleted the Redis state after the
// retention, when the timeline is empty and late counts are dropped.
func TestSaleNumbers(t *testing.T) {
	b := newBroker(t)
	cfg := kafkaConfig(t, b)
	cfg.Retention = 2 * time.Second
	app := startApp(t, cfg)
	const stock = 5
	id := openActivity(t, app, stock, 1)
	// A winner who tries again while slots are left is at the limit.
	first := crowdAll(app.URL(), id, []string{"early"}, 1)
	again := crowdAll(app.URL(), id, []string{"early"}, 1)
	if first[len(first)-1].status != http.StatusOK || again[len(again)-1].code != "limit_reached" {
		t.Fatalf("early joins: %+v then %+v", first, again)
	}
	answers := append(first, again...)
	answers = append(answers, crowdAll(app.URL(), id, users("storm", 200), 50)...)
	answers = append(answers, crowdAll(app.URL(), id, users("storm", 20), 10)...) // winners and losers again
	// Counted as the server's tally counts: busy is shed, slots_in_flight
	// and 429; a 503 of a dependency that failed is not counted (the join
	// was sent again).
	var want turnedAway
	won, uncounted := int64(0), 0
	for _, a := range answers {
		switch {
		case a.status == http.StatusOK:
			won++
		case a.code == "sold_out":
			want.SoldOut++
		case a.code == "limit_reached":
			want.LimitReached++
		case a.shed || a.code == "slots_in_flight" || a.status == http.StatusTooManyRequests:
			want.Busy++
		case a.status == http.StatusServiceUnavailable && a.code == "unavailable":
			uncounted++
		default:
			t.Fatalf("join answered %d %s", a.status, a.code)
		}
	}
	if won != stock || want.SoldOut == 0 || want.LimitReached == 0 {
		t.Fatalf("%d won, turned away %+v: want %d winners, some sold out and at the limit", won, want, stock)
	}
	if uncounted > 0 {
		t.Logf("%d joins answered 503 unavailable (a dependency), not counted", uncounted)
	}
	total := won + want.SoldOut + want.LimitReached + want.Busy
	var a saleActivity
	var body string
	defer func() {
		if t.Failed() {
			t.Logf("last answer %s, want turned away %+v", body, want)
		}
	}()
	eventually(t, 10*time.Second, "the joins counted in Redis", func() bool {
		_, a, body = getSale(t, app, id)
		if a.Stats != nil && a.Stats.TurnedAway != nil && *a.Stats.TurnedAway == want {
			return true
		}
		return false
	})
	if *a.Stats.Issued != stock || a.Summary != nil || a.Unavailable != nil {
		t.Fatalf("open activity: %+v, want %d issued, no summary, nothing unavailable", a, stock)
	}
	tl := getTimeline(t, app, id)
	var joins, winners, most int64
	for _, s := range tl.Seconds {
		joins, winners, most = joins+s.Joins, winners+s.Winners, max(most, s.Joins)
		if s.Joins == 0 || s.At.Nanosecond() != 0 {
			t.Errorf("second %+v: want whole seconds with joins only", s)
		}
	}
	if joins != total || winners != stock || tl.Peak == nil || tl.Peak.Joins != most {
		t.Fatalf("timeline %+v: %d joins, %d winners, want %d and %d, the peak the busiest second", tl, joins, winners, total, stock)
	}

	// Close: the summary, at once and once the job has caught up.
	if code, body := adminCall(t, app, "POST", fmt.Sprintf("/api/v1/admin/activities/%d/close", id), ""); code != http.StatusOK || !strings.Contains(body, `"summary"`) {
		t.Fatalf("close: %d %s, want 200 with the summary", code, body)
	}
	closed := time.Now()
	converged(t, app, id, stock, stock)
	eventually(t, 10*time.Second, "the summary up to date", func() bool {
		_, a, _ = getSale(t, app, id)
		return a.Summary != nil && a.Summary.Winners == stock && a.Summary.TurnedAway == want && a.Summary.PeakJoinsPerSecond == most
	})
	m := a.Summary
	if m.PeakAt == nil || !m.PeakAt.Equal(tl.Peak.At) || m.StartedAt.Before(a.BeginAt) || !m.EndedAt.After(m.StartedAt) ||
		m.EndedAt.After(closed) || m.DurationSeconds != int64(m.EndedAt.Sub(m.StartedAt)/time.Second) {
		t.Fatalf("summary %+v of %+v", m, a)
	}
	before, _ := json.Marshal(m)

	// After the retention: the Redis state is gone, the summary stays.
	pattern := fmt.Sprintf("%s:{%d}:*", cfg.RedisPrefix, id)
	eventually(t, 15*time.Second, "the closed activity's keys deleted", func() bool {
		return len(testenv.Keys(t, app.rdb, pattern)) == 0
	})
	_, a, _ = getSale(t, app, id)
	if after, _ := json.Marshal(a.Summary); string(after) != string(before) {
		t.Fatalf("summary after the retention %s, want %s", after, before)
	}
	if a.Stats.TurnedAway != nil {
		t.Errorf("turnedAway %+v after the retention, want absent", a.Stats.TurnedAway)
	}
	if tl := getTimeline(t, app, id); len(tl.Seconds) != 0 || tl.Peak != nil {
		t.Errorf("timeline after the retention %+v, want empty", tl)
	}
	// A late flush does not bring the keys back.
	if failed, err := app.Store.AddJoins(context.Background(), []activity.JoinCounts{{ActivityID: id, TurnedAway: activity.TurnedAway{SoldOut: 1},
		Seconds: []activity.SecondCount{{At: time.Now().Unix(), Joins: 1}}}}); err != nil || len(failed) != 0 {
		t.Fatal(failed, err)
	}
	if keys := testenv.Keys(t, app.rdb, pattern); len(keys) != 0 {
		t.Fatalf("a flush after the retention wrote %v", keys)
	}
}

// crowdAll is crowd, every answer kept: those a join is sent again after
// (slots_in_flight, shed, a dependency unavailable) too.
func crowdAll(base string, id int64, users []string, width int) []joinAnswer {
	var mu sync.Mutex
	var out []joinAnswer
	inParallel(len(users), width, func(i int) {
		for {
			a := joinHTTP(base, id, users[i])
			mu.Lock()
			out = append(out, a)
			mu.Unlock()
			if !retried(a) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	return out
}

// retried reports whether crowdAll sends a join answered a again: every
// 503 (slots_in_flight, shed, a dependency unavailable) says nothing was
// taken and to retry.
func retried(a joinAnswer) bool { return a.status == http.StatusServiceUnavailable }

// TestAdminReadDegraded: GET of one activity with Redis down answers from
// MySQL without the Redis numbers; with MySQL down from this instance's
// last read, with the Redis numbers; an activity this instance never read
// answers 503 naming mysql, and so does any with both down.
func TestAdminReadDegraded(t *testing.T) {
	cfg := testConfig(t)
	cfg.JobInterval = 100 * time.Millisecond
	redisProxy := testenv.NewProxy(t, testenv.RedisAddr())
	cfg.RedisAddrs = []string{redisProxy.Addr()}
	mysqlProxy := mysqlViaProxy(t, &cfg)
	app := startApp(t, cfg)
	id := openActivity(t, app, 3, 1)
	if got := tokens(t, crowd(app.URL(), id, users("u", 5), 5)); len(got) != 3 {
		t.Fatalf("%d tokens, want 3", len(got))
	}
	converged(t, app, id, 3, 3)
	eventually(t, 10*time.Second, "the joins counted", func() bool {
		_, a, _ := getSale(t, app, id)
		return a.Stats.TurnedAway != nil && a.Stats.TurnedAway.SoldOut == 2
	})
	var never struct{ ID int64 }
	if code := send(t, app, "POST", "/api/v1/admin/activities", `{"name":"never read","stock":1,"beginAt":"2030-01-01T00:00:00Z","endAt":"2030-01-02T00:00:00Z"}`, &never); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}

	t.Run("RedisDown", func(t *testing.T) {
		redisProxy.Cut()
		defer redisProxy.Restore()
		code, a, body := getSale(t, app, id)
		if code != http.StatusOK || len(a.Unavailable) != 1 || a.Unavailable[0] != "redis" || a.ReadAt != nil {
			t.Fatalf("%d %s, want 200 with unavailable [redis]", code, body)
		}
		s := a.Stats
		if s.Claimed != nil || s.InFlight != nil || s.Issued != nil || s.TurnedAway != nil ||
			s.Recorded == nil || *s.Recorded != 3 || s.Surplus == nil || *s.Surplus != 0 || s.ReconciledAt == nil {
			t.Fatalf("stats %s, want MySQL's numbers alone", body)
		}
	})
	eventually(t, 10*time.Second, "Redis back", func() bool {
		_, a, _ := getSale(t, app, id)
		return a.Unavailable == nil
	})

	t.Run("MySQLDown", func(t *testing.T) {
		mysqlProxy.Cut()
		defer mysqlProxy.Restore()
		code, a, body := getSale(t, app, id)
		if code != http.StatusOK || len(a.Unavailable) != 1 || a.Unavailable[0] != "mysql" || a.ReadAt == nil ||
			time.Since(*a.ReadAt) > time.Minute || a.State != "open" {
			t.Fatalf("%d %s, want 200 with unavailable [mysql] and readAt", code, body)
		}
		s := a.Stats
		if s.Claimed == nil || *s.Claimed != 3 || s.Issued == nil || *s.Issued != 3 || s.InFlight == nil ||
			s.TurnedAway == nil || s.TurnedAway.SoldOut != 2 || s.Recorded != nil || s.Surplus != nil || strings.Contains(body, "reconciledAt") {
			t.Fatalf("stats %s, want Redis's numbers alone", body)
		}
		for _, other := range []int64{never.ID, 999_999_999} {
			code, _, body := getSale(t, app, other)
			if code != http.StatusServiceUnavailable || !strings.Contains(body, `"dependency":"mysql"`) {
				t.Fatalf("activity %d, never read, with MySQL down: %d %s, want 503 naming mysql", other, code, body)
			}
		}
		t.Run("AndRedis", func(t *testing.T) {
			redisProxy.Cut()
			defer redisProxy.Restore()
			code, _, body := getSale(t, app, id)
			if code != http.StatusServiceUnavailable || !strings.Contains(body, `"dependency":"mysql"`) {
				t.Fatalf("both down: %d %s, want 503 naming mysql", code, body)
			}
		})
	})
	eventually(t, 10*time.Second, "MySQL back", func() bool {
		code, a, _ := getSale(t, app, id)
		return code == http.StatusOK && a.Unavailable == nil
	})
	if code, a, _ := getSale(t, app, never.ID); code != http.StatusOK || a.Unavailable != nil {
		t.Fatalf("the draft with everything up: %d %+v", code, a)
	}
}

// TestSummaryOutlivesARebuild: a closed sale's summary, once written, keeps
// its turned-away joins and its peak when the activity's Redis state is
// lost within the retention and rebuilt, when the slot store's counts start
// again from nothing.
func TestSummaryOutlivesARebuild(t *testing.T) {
	cfg := testConfig(t)
	cfg.JobInterval = 100 * time.Millisecond
	app := startApp(t, cfg)
	id := openActivity(t, app, 3, 1)
	crowd(app.URL(), id, users("u", 10), 5)
	eventually(t, 10*time.Second, "the joins counted", func() bool {
		_, a, _ := getSale(t, app, id)
		return a.Stats.TurnedAway != nil && a.Stats.TurnedAway.SoldOut == 7
	})
	if code, _ := adminCall(t, app, "POST", fmt.Sprintf("/api/v1/admin/activities/%d/close", id), ""); code != http.StatusOK {
		t.Fatalf("close: %d", code)
	}
	var before *saleSummary
	eventually(t, 10*time.Second, "the summary", func() bool {
		_, a, _ := getSale(t, app, id)
		before = a.Summary
		return before != nil && before.TurnedAway.SoldOut == 7 && before.PeakJoinsPerSecond > 0
	})
	// Redis loses this activity's state, as a restart without persistence
	// would.
	keys := testenv.Keys(t, app.rdb, fmt.Sprintf("%s:{%d}:*", cfg.RedisPrefix, id))
	if len(keys) == 0 {
		t.Fatal("the activity has no Redis keys to lose")
	}
	if err := app.rdb.Del(context.Background(), keys...).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the state rebuilt", func() bool {
		_, a, _ := getSale(t, app, id)
		return a.Stats.Issued != nil && *a.Stats.Issued == 3 && a.Stats.TurnedAway != nil
	})
	time.Sleep(time.Second) // ten job cycles, each bringing the summary up to date
	_, a, body := getSale(t, app, id)
	if a.Summary == nil || a.Summary.TurnedAway != before.TurnedAway || a.Summary.PeakJoinsPerSecond != before.PeakJoinsPerSecond {
		t.Fatalf("the summary after the rebuild differs from %+v: %s", *before, body)
	}
}

// TestClosedSaleReadWithMySQLDown: a closed sale whose Redis state is gone
// after the retention, read while MySQL is down, answers the numbers of the
// copy read before, not zeros.
func TestClosedSaleReadWithMySQLDown(t *testing.T) {
	b := newBroker(t)
	cfg := kafkaConfig(t, b)
	cfg.Retention = 2 * time.Second
	cfg.JobInterval = 100 * time.Millisecond
	mysqlProxy := mysqlViaProxy(t, &cfg)
	app := startApp(t, cfg)
	id := openActivity(t, app, 3, 1)
	if got := tokens(t, crowd(app.URL(), id, users("u", 5), 5)); len(got) != 3 {
		t.Fatalf("%d tokens, want 3", len(got))
	}
	converged(t, app, id, 3, 3)
	if code, _ := adminCall(t, app, "POST", fmt.Sprintf("/api/v1/admin/activities/%d/close", id), ""); code != http.StatusOK {
		t.Fatalf("close: %d", code)
	}
	pattern := fmt.Sprintf("%s:{%d}:*", cfg.RedisPrefix, id)
	eventually(t, 15*time.Second, "the Redis state dropped", func() bool { return len(testenv.Keys(t, app.rdb, pattern)) == 0 })
	getSale(t, app, id) // the copy this instance keeps
	mysqlProxy.Cut()
	defer mysqlProxy.Restore()
	code, a, body := getSale(t, app, id)
	if code != http.StatusOK || a.Stats == nil || a.Stats.Issued == nil || *a.Stats.Issued != 3 ||
		a.Stats.Claimed == nil || *a.Stats.Claimed != 3 {
		t.Fatalf("with MySQL down: %d %s; want claimed and issued 3", code, body)
	}
}
