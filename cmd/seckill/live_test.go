package main

import (
	"encoding/csv"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// liveInstances starts three instances on one Redis, one database and the
// embedded broker of the first, each running its job every 200 ms.
func liveInstances(t *testing.T) []*App {
	t.Helper()
	cfg := testConfig(t)
	cfg.JobInterval = 200 * time.Millisecond
	cfg.LogLevel = "error"
	first := startApp(t, cfg)
	apps := []*App{first}
	for range 2 {
		c := cfg
		c.KafkaBrokers = first.embedded.Brokers()
		apps = append(apps, startApp(t, c))
	}
	return apps
}

// TestLiveActivityOnThreeInstances runs what staff and the draw do with a
// live activity on three instances: it opens itself at beginAt, once; the
// stock raised on one instance sells exactly the added slots on the
// others, after a sell-out; a lowering below the claimed slots is refused;
// one token redeemed from all three at once is redeemed once; the CSV is
// every valid record.
func TestLiveActivityOnThreeInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three instances")
	}
	apps := liveInstances(t)
	begin := time.Now().Add(2 * time.Second).Truncate(time.Millisecond)
	var a struct{ ID int64 }
	body := fmt.Sprintf(`{"name":"scheduled","stock":30,"perUserLimit":1,"beginAt":%q,"endAt":%q,"autoOpen":true}`,
		begin.UTC().Format(time.RFC3339Nano), begin.Add(time.Hour).UTC().Format(time.RFC3339Nano))
	if code := send(t, apps[0], "POST", "/api/v1/admin/activities", body, &a); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	if code := send(t, apps[1], "POST", fmt.Sprintf("/api/v1/admin/activities/%d/approve", a.ID), "", nil); code != http.StatusOK {
		t.Fatalf("approve: %d", code)
	}

	// Open by schedule: not_open until beginAt, tokens within two seconds
	// after it, and one open over the three instances.
	var first time.Time
	for i := 0; first.IsZero(); i++ {
		if time.Since(begin) > 5*time.Second {
			t.Fatalf("no join succeeded within 5 s after beginAt")
		}
		asked := time.Now()
		switch ans := joinHTTP(apps[i%3].URL(), a.ID, fmt.Sprintf("early%d", i)); {
		case ans.status == http.StatusOK:
			first = asked
		case ans.status == http.StatusServiceUnavailable && ans.code == "unavailable":
			// The open is in MySQL and its preheat not yet in Redis: a
			// join in that instant is told to retry, nothing taken.
			time.Sleep(50 * time.Millisecond)
		case ans.code != "not_open":
			t.Fatalf("join before the open answered %d %s", ans.status, ans.code)
		default:
			time.Sleep(50 * time.Millisecond)
		}
	}
	if first.Before(begin.Add(-50 * time.Millisecond)) {
		t.Fatalf("a join succeeded at %v, before beginAt %v", first, begin)
	}
	t.Logf("first token %v after beginAt", first.Sub(begin).Round(time.Millisecond))
	time.Sleep(600 * time.Millisecond) // three more job cycles on each instance
	opened := 0.0
	for _, app := range apps {
		opened += metricValue(scrape(t, app.URL()), "seckill_activities_opened_by_schedule_total")
	}
	if opened != 1 {
		t.Fatalf("opened by schedule %v times over the instances, want once", opened)
	}

	// Sell out over the three instances, raise the stock on one: the
	// others sell exactly the added slots.
	all := map[string]joinAnswer{}
	joinRound := func(round string) {
		for i, app := range apps {
			maps.Copy(all, tokens(t, crowd(app.URL(), a.ID, users(fmt.Sprintf("%s-%d-", round, i), 20), 10)))
		}
	}
	joinRound("first")
	if len(all) != 29 { // and early-bird's
		t.Fatalf("%d tokens of stock 30 besides the first, want 29", len(all))
	}
	code, out := adminCall(t, apps[2], "POST", fmt.Sprintf("/api/v1/admin/activities/%d/stock", a.ID), `{"stock":45}`)
	if code != http.StatusOK {
		t.Fatalf("raise: %d %s", code, out)
	}
	time.Sleep(300 * time.Millisecond) // each instance trusts a sell-out for 200 ms
	joinRound("second")
	if len(all) != 44 {
		t.Fatalf("%d tokens after the raise to 45 besides the first, want 44", len(all))
	}
	code, out = adminCall(t, apps[0], "POST", fmt.Sprintf("/api/v1/admin/activities/%d/stock", a.ID), `{"stock":40}`)
	if code != http.StatusConflict || !strings.Contains(out, `"stock_conflict"`) || !strings.Contains(out, `"claimed":45`) {
		t.Fatalf("lowering below the claimed answered %d %s, want 409 stock_conflict with claimed 45", code, out)
	}
	converged(t, apps[1], a.ID, 45, 45)

	// One token redeemed from the three instances at once.
	var tok string
	for k := range all {
		tok = k
		break
	}
	var wg sync.WaitGroup
	codes := make([]int, 30)
	for i := range codes {
		wg.Go(func() {
			codes[i], _ = adminCall(t, apps[i%3], "POST", "/api/v1/admin/tokens/"+tok+"/redeem", "")
		})
	}
	wg.Wait()
	byCode := map[int]int{}
	for _, c := range codes {
		byCode[c]++
	}
	if byCode[http.StatusOK] != 1 || byCode[http.StatusConflict] != 29 {
		t.Fatalf("redeems answered %v, want one 200 and 29 409", codes)
	}

	// The CSV holds every valid record: the 45 tokens.
	code, out = adminCall(t, apps[2], "GET", fmt.Sprintf("/api/v1/admin/activities/%d/participations?format=csv", a.ID), "")
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != http.StatusOK || err != nil || len(rows) != 46 {
		t.Fatalf("CSV export: %d, %d rows (%v), want 200 and a header with 45 rows", code, len(rows), err)
	}
	redeemed := 0
	for _, r := range rows[1:] {
		if r[4] != "" {
			redeemed++
		}
		if _, ok := all[r[0]]; !ok && !strings.HasPrefix(r[2], "early") {
			t.Fatalf("CSV row %v is no token answered", r)
		}
	}
	if redeemed != 1 {
		t.Fatalf("%d rows redeemed in the CSV, want 1", redeemed)
	}
}
