package main

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"seckill/internal/testenv"
)

// TestConsoleOutage runs the live view in headless Chromium against an App
// whose Redis and MySQL go through proxies the test cuts: an open activity
// before its beginning counts down; with MySQL down the view says so and
// what it means (joins go on), greys what MySQL gave with its age, and the
// winners Redis counts keep coming; a close fails naming MySQL; with Redis
// down it says nobody can join and greys the winners with their age; after
// each outage it recovers on its own.
func TestConsoleOutage(t *testing.T) {
	p := newBrowserPage(t)
	b := newBroker(t)
	cfg := kafkaConfig(t, b)
	redisProxy := testenv.NewProxy(t, cfg.RedisAddrs[0])
	cfg.RedisAddrs = []string{redisProxy.Addr()}
	mysqlProxy := mysqlViaProxy(t, &cfg)
	app := startApp(t, cfg)
	activityPage := func(id int64) string { return fmt.Sprintf("%s/console/#/activities/%d", app.URL(), id) }
	age := regexp.MustCompile(`^updated (\d+ s ago|just now)$`)
	const stock = 100

	create := func(name string, begin time.Time) int64 {
		t.Helper()
		var a adminActivity
		body := fmt.Sprintf(`{"name":%q,"stock":%d,"beginAt":%q,"endAt":%q}`, name, stock,
			begin.UTC().Format(time.RFC3339), begin.Add(time.Hour).UTC().Format(time.RFC3339))
		if code := send(t, app, "POST", "/api/v1/admin/activities", body, &a); code != http.StatusCreated {
			t.Fatalf("create %s: %d", name, code)
		}
		for _, action := range []string{"approve", "open"} {
			if code := send(t, app, "POST", fmt.Sprintf("/api/v1/admin/activities/%d/%s", a.ID, action), "", nil); code != http.StatusOK {
				t.Fatalf("%s %s: %d", action, name, code)
			}
		}
		return a.ID
	}
	// title is the live status's title; down what it says is down.
	title := func() string { return p.text("#live-status-title") }

	ok := t.Run("CountdownBeforeBegin", func(t *testing.T) {
		p.t = t
		id := create("later", time.Now().Add(2*time.Minute).Truncate(time.Second))
		p.do("open the console", chromedp.Navigate(app.URL()+"/console/"))
		p.signIn(app.AdminToken(), "admin (admin)")
		p.do("the open activity", chromedp.Navigate(activityPage(id)))
		p.waitFor("the countdown", `document.querySelector('#live-status')?.dataset.status === 'waiting'`, 10*time.Second)
		first := title()
		if !strings.Contains(first, "Starts in 1 min") && !strings.Contains(first, "Starts in 2 min") {
			t.Errorf("before beginAt the status says %q, want a countdown (Starts in 1 min …)", first)
		}
		if strings.Contains(first, "Selling") || strings.Contains(p.text("#live-status-detail"), "Selling") {
			t.Errorf("before beginAt the status says it is selling: %q", first)
		}
		p.waitFor("the countdown moves", fmt.Sprintf(`document.querySelector('#live-status-title').textContent !== %q`, first), 5*time.Second)
		if j := joinHTTP(app.URL(), id, "too-early"); j.status != http.StatusConflict || j.code != "not_open" {
			t.Errorf("a join before beginAt: %d %s, want 409 not_open", j.status, j.code)
		}
		p.accessible("live view before beginAt, laptop")
	})

	var id int64
	ok = ok && t.Run("MySQLDownJoinsGoOn", func(t *testing.T) {
		p.t = t
		id = create("outage", time.Now().Add(-time.Minute))
		p.do("its live view", chromedp.Navigate(activityPage(id)))
		p.waitFor("selling", `document.querySelector('#live-status')?.dataset.status === 'selling'`, 10*time.Second)
		if n := len(tokens(t, crowd(app.URL(), id, users("before", 20), 5))); n != 20 {
			t.Fatalf("%d tokens of 20 before the outage", n)
		}
		p.waitFor("the 20 winners saved", `document.querySelector('#live-saved').textContent === '20 ✓'`, 15*time.Second)

		mysqlProxy.Cut()
		p.waitFor("MySQL named", `document.querySelector('#live-status')?.dataset.status === 'outage' && document.querySelector('#live-status').dataset.down === 'mysql'`, 15*time.Second)
		if got := title(); !strings.Contains(got, "MySQL is down") || !strings.Contains(got, "joins go on") {
			t.Errorf("with MySQL down the status says %q; want it to name MySQL and say joins go on", got)
		}
		// Joins go on, and the winners Redis counts keep coming.
		if n := len(tokens(t, crowd(app.URL(), id, users("during", 15), 5))); n != 15 {
			t.Fatalf("%d tokens of 15 while MySQL is down, want all", n)
		}
		p.waitFor("the winners move while MySQL is down", `document.querySelector('#live-winners').textContent === '35' && document.querySelector('#live-status').dataset.down === 'mysql'`, 10*time.Second)
		if eval[bool](p, `document.querySelector('#live-winners-tile').classList.contains('stale')`) {
			t.Error("the winners are greyed while only MySQL is down")
		}
		if !eval[bool](p, `document.querySelector('#live-saved-tile').classList.contains('stale')`) {
			t.Error("what is saved to the database is not greyed while MySQL is down")
		}
		p.waitFor("the age of the saved figures", `/^updated \d+ s ago$/.test(document.querySelector('#live-saved-age').textContent)`, 5*time.Second)
		if a := p.text("#live-saved-age"); !age.MatchString(a) {
			t.Errorf("the saved figures' age says %q", a)
		}
		if os.Getenv("SECKILL_UPDATE_SCREENSHOT") == "1" {
			eval[chromedp.Void](p, `window.scrollTo(0, 0)`)
			p.screenshot(outageScreenshotPath)
		}
		p.noHorizontalScroll("outage view, laptop")
		p.accessible("outage view, laptop")

		// A close needs MySQL: it fails, saying which and what it means.
		p.confirm("#action-close", true)
		p.waitFor("the close fails", `document.querySelector('#notice').textContent.includes('MySQL is down')`, 15*time.Second)
		if n := p.text("#notice"); !strings.Contains(n, "cannot be created, changed, opened or closed") {
			t.Errorf("the failed close says %q", n)
		}

		mysqlProxy.Restore()
		p.waitFor("back to selling, all saved", `document.querySelector('#live-status').dataset.status === 'selling' && document.querySelector('#live-saved').textContent === '35 ✓'`, 30*time.Second)
		if eval[bool](p, `!!document.querySelector('.tile.stale')`) {
			t.Error("a figure stays greyed after MySQL is back")
		}
	})

	ok = ok && t.Run("RedisDownNobodyCanJoin", func(t *testing.T) {
		p.t = t
		redisProxy.Cut()
		p.waitFor("Redis named", `document.querySelector('#live-status')?.dataset.status === 'outage' && document.querySelector('#live-status').dataset.down === 'redis'`, 15*time.Second)
		if got := title(); !strings.Contains(got, "Redis is down") || !strings.Contains(got, "nobody can join") {
			t.Errorf("with Redis down the status says %q; want it to name Redis and say nobody can join", got)
		}
		if j := joinHTTP(app.URL(), id, "while-redis-is-down"); j.status == http.StatusOK {
			t.Errorf("a join while Redis is down got a token")
		}
		if !eval[bool](p, `document.querySelector('#live-winners-tile').classList.contains('stale') && document.querySelector('#gauge-card').classList.contains('stale')`) {
			t.Error("the winners and the gauge are not greyed while Redis is down")
		}
		if w := p.text("#live-winners"); w != "35" {
			t.Errorf("the winners show %q while Redis is down, want the last known 35", w)
		}
		p.waitFor("the winners' age", `/^updated \d+ s ago$/.test(document.querySelector('#live-winners-age').textContent)`, 5*time.Second)
		if d := p.text("#live-status-detail"); !strings.Contains(d, "s ago") {
			t.Errorf("the status detail says %q; want it to say how old the figures are", d)
		}
		p.accessible("outage view, Redis down")

		redisProxy.Restore()
		p.waitFor("back to selling", `document.querySelector('#live-status').dataset.status === 'selling' && !document.querySelector('.tile.stale')`, 30*time.Second)
		if n := len(tokens(t, crowd(app.URL(), id, users("after", 5), 5))); n != 5 {
			t.Fatalf("%d tokens of 5 after Redis is back", n)
		}
		p.waitFor("the new winners", `document.querySelector('#live-winners').textContent === '40'`, 10*time.Second)
	})
	_ = ok

	p.t = t
	p.checkNoProblems()
}
