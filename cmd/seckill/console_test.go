package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath is where the Debian package chromium installs the browser.
const chromiumPath = "/usr/bin/chromium"

// consoleTimeZone is the browser's time zone in TestConsole: half an hour
// off UTC and without daylight saving time, so that a conversion that
// forgets the zone, or rounds it to hours, shows.
const (
	consoleTimeZone = "Asia/Kolkata"
	consoleOffset   = 5*time.Hour + 30*time.Minute
)

// screenshotPath is the README's picture of the live view, written only
// when SECKILL_UPDATE_SCREENSHOT=1, so that a test run leaves the tree
// clean.
var screenshotPath = filepath.Join("..", "..", "docs", "console-live.png")

// phoneScreenshotPath and outageScreenshotPath are the README's pictures of
// the live view on a phone and during an outage, written likewise.
var (
	phoneScreenshotPath  = filepath.Join("..", "..", "docs", "console-phone.png")
	outageScreenshotPath = filepath.Join("..", "..", "docs", "console-outage.png")
)

// chromium returns the path of the browser. Without one the test is skipped,
// except in CI (CI set), which installs Chromium and must run it.
func chromium(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		msg := fmt.Sprintf("no Chromium at %s (%v): install it with "+
			"`sudo apt-get install chromium` (Debian), or run scripts/services.sh", chromiumPath, err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg + "; CI must run the browser test")
		}
		t.Skip(msg)
	}
	return chromiumPath
}

// browserPage is one tab of a headless Chromium of the test's own, with a
// fresh profile, a laptop-sized window and the browser's uncaught
// exceptions and security errors (a Content-Security-Policy violation)
// collected.
type browserPage struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	problems []string
}

func newBrowserPage(t *testing.T) *browserPage {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(cancelTab)
	p := &browserPage{t: t, ctx: ctx}
	// The first action starts the browser; it must not run under a
	// timeout, which would end the browser with it.
	if err := chromedp.Listen(ctx, p.watch); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	// A laptop's screen: the page gets all of it (the window's size would
	// include the browser's frame).
	p.do("a laptop's screen", chromedp.EmulateViewport(1280, 800))
	p.call("time zone", func(ctx context.Context) error {
		_, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: consoleTimeZone})
		return err
	})
	return p
}

// watch runs on chromedp's event loop: it only records.
func (p *browserPage) watch(ev any) {
	var problem string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		problem = "uncaught exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil && ev.ExceptionDetails.Exception.Description != "" {
			problem += " " + ev.ExceptionDetails.Exception.Description
		}
	case *cdplog.EventEntryAdded:
		// A 401 or 400 answer is logged as a network error; those are part
		// of the scenario. A refused resource (CSP) or a script error is not.
		if ev.Entry.Level == cdplog.EntryLevelError && ev.Entry.Source != cdplog.EntrySourceNetwork {
			problem = fmt.Sprintf("console %s error: %s", ev.Entry.Source, ev.Entry.Text)
		}
	}
	if problem != "" {
		p.mu.Lock()
		p.problems = append(p.problems, problem)
		p.mu.Unlock()
	}
}

func (p *browserPage) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v\npage: %s", what, err, p.pageText())
	}
}

func (p *browserPage) call(what string, fn func(ctx context.Context) error) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := fn(ctx); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page and decodes its value.
func eval[T any](p *browserPage, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition until it holds or d has passed.
func (p *browserPage) waitFor(what, cond string, d time.Duration) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, d+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(d)))
	if err != nil {
		p.t.Fatalf("%s: not within %v (%v)\npage: %s", what, d, err, p.pageText())
	}
}

// pageText is what the page shows, for failure messages.
func (p *browserPage) pageText() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

func (p *browserPage) text(sel string) string {
	p.t.Helper()
	return eval[string](p, fmt.Sprintf(`(document.querySelector(%q) || {textContent: "(missing)"}).textContent`, sel))
}

// number reads a number the console shows, formatted for the locale.
func (p *browserPage) number(sel string) int64 {
	p.t.Helper()
	s := p.text(sel)
	n, err := strconv.ParseInt(strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s), 10, 64)
	if err != nil {
		p.t.Fatalf("%s shows %q, not a number", sel, s)
	}
	return n
}

// setValue sets an input's value as a date picker would: the value, then
// the input and change events.
func (p *browserPage) setValue(sel, v string) {
	p.t.Helper()
	got := eval[string](p, fmt.Sprintf(`{const e = document.querySelector(%q); e.value = %q;
		e.dispatchEvent(new Event('input', {bubbles: true})); e.dispatchEvent(new Event('change', {bubbles: true})); e.value}`, sel, v))
	if got != v {
		p.t.Fatalf("%s took the value %q as %q", sel, v, got)
	}
}

// typeInto replaces an input's value by typing, so that the page sees the
// key and input events.
func (p *browserPage) typeInto(sel, v string) {
	p.t.Helper()
	eval[chromedp.Void](p, fmt.Sprintf(`document.querySelector(%q).value = ''`, sel))
	p.do("type into "+sel, chromedp.SendKeys(chromedp.CSS(sel), v))
}

func (p *browserPage) click(sel string) {
	p.t.Helper()
	p.do("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// confirm clicks an action button and answers its confirmation dialog.
func (p *browserPage) confirm(button string, ok bool) {
	p.t.Helper()
	p.click(button)
	p.waitFor("the confirmation dialog opens", `document.querySelector('#confirm')?.open`, 5*time.Second)
	if ok {
		p.click("#confirm-ok")
	} else {
		p.click("#confirm-cancel")
	}
	p.waitFor("the confirmation dialog closes", `!document.querySelector('#confirm')?.open`, 5*time.Second)
}

func (p *browserPage) screenshot(path string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("wrote %s (%d bytes)", path, len(png))
}

// noHorizontalScroll fails when the page is wider than the window.
func (p *browserPage) noHorizontalScroll(where string) {
	p.t.Helper()
	if wide := eval[bool](p, `document.documentElement.scrollWidth > window.innerWidth`); wide {
		p.t.Errorf("%s: the page is wider than the window (%d > %d px)", where,
			eval[int](p, `document.documentElement.scrollWidth`), eval[int](p, `window.innerWidth`))
	}
}

func (p *browserPage) checkNoProblems() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, problem := range p.problems {
		p.t.Errorf("browser: %s", problem)
	}
}

// adminActivity is the admin view of an activity, as the test reads it from
// the API to check what the console did.
type adminActivity struct {
	ID           int64
	Name         string
	Stock        int64
	PerUserLimit int64
	Shards       int
	State        string
	BeginAt      time.Time
	EndAt        time.Time
}

func getActivity(t *testing.T, app *App, id int64) adminActivity {
	t.Helper()
	var a adminActivity
	if code := send(t, app, "GET", fmt.Sprintf("/api/v1/admin/activities/%d", id), "", &a); code != http.StatusOK {
		t.Fatalf("get activity %d: %d", id, code)
	}
	return a
}

// TestConsole runs a whole activity from the web console in headless
// Chromium against a real App: sign in (a wrong token first), create an
// activity (a validation error first), edit it, approve and open it, watch
// the live view through a join burst until sold out and converged, close
// it, then find it in the list by state and page through the list, on a
// laptop screen and a phone.
func TestConsole(t *testing.T) {
	p := newBrowserPage(t)
	b := newBroker(t)
	app := startApp(t, kafkaConfig(t, b))
	local := time.FixedZone(consoleTimeZone, int(consoleOffset/time.Second))
	const stock, crowdSize = 50, 80
	var id int64
	var saleToken string // a token of the sale, for the token page

	ok := t.Run("WrongTokenIsTold", func(t *testing.T) {
		p.t = t
		p.do("open the console", chromedp.Navigate(app.URL()+"/console"), chromedp.WaitVisible(chromedp.ID("token")))
		if path := eval[string](p, `location.pathname`); path != "/console/" {
			t.Errorf("GET /console landed on %s, want /console/", path)
		}
		// ICU may name the zone by an alias (Asia/Calcutta): check the offset.
		if off := eval[int](p, `-new Date().getTimezoneOffset()`); off != int(consoleOffset/time.Minute) {
			t.Fatalf("the browser is %d minutes off UTC, want %d (%s)", off, int(consoleOffset/time.Minute), consoleTimeZone)
		}
		p.typeInto("#token", "not-the-admin-token")
		p.click("#signin-submit")
		p.waitFor("the wrong token is told", `document.querySelector('#signin-error')?.textContent.includes('Wrong token')`, 10*time.Second)
		if stored := eval[bool](p, `sessionStorage.length > 0 || localStorage.length > 0`); stored {
			t.Error("a wrong token was stored")
		}
		if text := p.text("#signin-text"); strings.Contains(text, "SECKILL_") {
			t.Errorf("the sign-in page talks about environment variables: %q", text)
		}
		// A skip link first, to the content.
		if first := eval[string](p, `document.querySelector('body > a')?.id || ''`); first != "skip-link" {
			t.Errorf("the page starts with %q, want the skip link", first)
		}
		// Shown once focused, followed with Enter.
		eval[chromedp.Void](p, `document.querySelector('#skip-link').focus()`)
		if top := eval[float64](p, `document.querySelector('#skip-link').getBoundingClientRect().top`); top < 0 {
			t.Errorf("the focused skip link is out of sight (top %.0f px)", top)
		}
		p.do("follow the skip link", chromedp.KeyEvent("\r"))
		if f := eval[string](p, `document.activeElement.id`); f != "main" {
			t.Errorf("the skip link moved the focus to %q, want main", f)
		}
		p.accessible("sign-in, laptop")
	})
	ok = ok && t.Run("SignIn", func(t *testing.T) {
		p.t = t
		p.typeInto("#token", app.AdminToken())
		p.click("#signin-submit")
		p.waitFor("the activities list", `document.querySelector('#list-status')?.textContent.includes('No activities yet')`, 10*time.Second)
		if got := eval[string](p, `sessionStorage.getItem('seckill.adminToken')`); got != app.AdminToken() {
			t.Errorf("sessionStorage holds %q, want the admin token", got)
		}
		if n := eval[int](p, `localStorage.length`); n != 0 {
			t.Errorf("localStorage holds %d items; the token belongs in the session only", n)
		}
		p.noHorizontalScroll("list, laptop")
	})

	begin := time.Now().In(local).Add(-time.Minute).Truncate(time.Minute)
	end := begin.Add(2 * time.Hour)
	ok = ok && t.Run("EveryFormErrorAtOnce", func(t *testing.T) {
		p.t = t
		p.click("#new-activity")
		p.do("the form", chromedp.WaitVisible(chromedp.ID("f-name")))
		// Required fields are marked, and each input names its hint and
		// its error.
		if req := eval[string](p, `[...document.querySelectorAll('#activity-form [required]')].map(e => e.id).join(' ')`); req != "f-name f-stock f-perUserLimit f-beginAt f-endAt f-shards" {
			t.Errorf("required inputs %q", req)
		}
		if mark := p.text(`label[for="f-stock"]`); !strings.Contains(mark, "*") || !strings.Contains(mark, "required") {
			t.Errorf("the stock's label %q does not mark it required", mark)
		}
		for _, f := range []string{"name", "stock", "perUserLimit", "beginAt", "endAt", "shards"} {
			got := eval[string](p, fmt.Sprintf(`document.querySelector('#f-%s').getAttribute('aria-describedby') || ''`, f))
			if !strings.Contains(got, "f-"+f+"-hint") || !strings.Contains(got, "f-"+f+"-error") {
				t.Errorf("#f-%s is described by %q, want its hint and its error", f, got)
			}
		}
		// The focus ring stands out from the background by 3:1 at least.
		eval[chromedp.Void](p, `document.querySelector('#f-name').focus()`)
		ring := eval[[]float64](p, `(() => {
			const rgb = c => (c.match(/[\d.]+/g) || []).slice(0, 3).map(Number);
			const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
				.reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
			const st = getComputedStyle(document.activeElement);
			const ring = lum(rgb(st.outlineColor)), bg = lum(rgb(getComputedStyle(document.body).backgroundColor));
			const card = lum(rgb(getComputedStyle(document.querySelector('#activity-form')).backgroundColor));
			const ratio = (a, b) => (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
			return [parseFloat(st.outlineWidth), Math.min(ratio(ring, bg), ratio(ring, card))];
		})()`)
		if ring[0] < 2 || ring[1] < 3 {
			t.Errorf("the focus ring is %.0f px at %.2f:1 against the background, want at least 2 px and 3:1", ring[0], ring[1])
		}
		// The zone beside every time.
		if n := eval[int](p, `[...document.querySelectorAll('#activity-form .with-zone .zone')].filter(z => z.textContent.includes('GMT+5:30')).length`); n != 2 {
			t.Errorf("%d time inputs show the zone GMT+5:30 beside them, want 2", n)
		}

		// A year typed digit by digit stays four digits long.
		eval[chromedp.Void](p, `{const e = document.querySelector('#f-beginAt'); e.value = ''; e.focus()}`)
		p.do("type a date digit by digit", chromedp.KeyEvent("12312026031"), chromedp.KeyEvent("5A"))
		if got := eval[string](p, `document.querySelector('#f-beginAt').value`); got != "2026-12-31T03:15" {
			t.Errorf("typing 12 31 202603 15 A into Begins gave %q, want 2026-12-31T03:15 (a four-digit year)", got)
		}

		// Everything wrong at once: no name, no stock, an end before the
		// beginning; all told together, in the fields' words, before any
		// request.
		p.typeInto("#f-name", "")
		p.typeInto("#f-description", "One slot per user.")
		eval[chromedp.Void](p, `document.querySelector('#f-stock').value = ''`)
		p.typeInto("#f-perUserLimit", "1")
		p.setValue("#f-beginAt", begin.Format("2006-01-02T15:04"))
		p.setValue("#f-endAt", begin.Add(-time.Hour).Format("2006-01-02T15:04"))
		p.click("#save")
		p.waitFor("the errors", `document.querySelector('#f-endAt-error').textContent !== ''`, 5*time.Second)
		errs := eval[map[string]string](p, `Object.fromEntries([...document.querySelectorAll('.field-error')].map(e => [e.id, e.textContent]))`)
		want := map[string]string{
			"f-name-error":         "Enter a name.",
			"f-description-error":  "",
			"f-stock-error":        "Enter the stock: how many slots to hand out, 1 to 10,000,000.",
			"f-perUserLimit-error": "",
			"f-beginAt-error":      "",
			"f-endAt-error":        "Ends must be after Begins.",
			"f-shards-error":       "",
		}
		for id, w := range want {
			if errs[id] != w {
				t.Errorf("#%s says %q, want %q", id, errs[id], w)
			}
		}
		if inv := eval[string](p, `[...document.querySelectorAll('[aria-invalid="true"]')].map(e => e.id).join(' ')`); inv != "f-name f-stock f-endAt" {
			t.Errorf("inputs marked invalid: %q, want f-name f-stock f-endAt", inv)
		}
		if focused := eval[string](p, `document.activeElement.id`); focused != "f-name" {
			t.Errorf("the focus is on %q, want the first field in error", focused)
		}
		if sum := p.text("#form-error"); !strings.Contains(sum, "3 fields") {
			t.Errorf("the form's summary says %q, want it to count 3 fields", sum)
		}
		p.accessible("form with errors, laptop")

		// A window in the past: warned at once, and saved only when
		// confirmed.
		p.typeInto("#f-name", "Console lucky draw")
		p.typeInto("#f-stock", strconv.Itoa(stock))
		monthAgo := begin.AddDate(0, -1, 0)
		p.setValue("#f-beginAt", monthAgo.Format("2006-01-02T15:04"))
		p.setValue("#f-endAt", monthAgo.Add(time.Hour).Format("2006-01-02T15:04"))
		if w := p.text("#window-warning"); !strings.Contains(w, "in the past") {
			t.Errorf("a window a month ago warns %q", w)
		}
		p.confirm("#save", false)
		p.setValue("#f-beginAt", begin.Format("2006-01-02T15:04"))
		p.setValue("#f-endAt", end.Format("2006-01-02T15:04"))
		if w := p.text("#window-warning"); !strings.Contains(w, "Begins is in the past") {
			t.Errorf("a window begun a minute ago warns %q", w)
		}
		// The per-user limit's upper bound is the server's; a name is
		// counted in characters, an emoji one.
		p.setValue("#f-name", strings.Repeat("🎁", 128))
		p.setValue("#f-perUserLimit", "1001")
		p.click("#save")
		p.waitFor("the per-user limit's range", `document.querySelector('#f-perUserLimit-error').textContent === 'Per-user limit must be a whole number from 1 to 1,000.'`, 5*time.Second)
		if other := eval[string](p, `[...document.querySelectorAll('.field-error')].filter(e => e.id !== 'f-perUserLimit-error').map(e => e.textContent).join('')`); other != "" {
			t.Errorf("other fields show errors (a name of 128 emoji is fine): %q", other)
		}
		if hint := p.text("#f-perUserLimit-hint"); !strings.Contains(hint, "1,000") {
			t.Errorf("the per-user limit's hint %q does not tell its bound", hint)
		}
		// So are the shards', with a hint in plain words.
		p.setValue("#f-perUserLimit", "1")
		p.setValue("#f-shards", "65")
		p.click("#save")
		p.waitFor("the shards' range", `document.querySelector('#f-shards-error').textContent === 'Shards must be a whole number from 1 to 64.'`, 5*time.Second)
		if hint := p.text("#f-shards-hint"); !strings.Contains(hint, "leave 1 unless told otherwise") || !strings.Contains(hint, "64") {
			t.Errorf("the shards' hint %q does not say to leave 1 and the bound", hint)
		}
		p.setValue("#f-shards", "1")
		p.setValue("#f-name", strings.Repeat("🎁", 129))
		p.click("#save")
		p.waitFor("the name's length", `document.querySelector('#f-name-error').textContent === 'Name is 129 characters long: at most 128.'`, 5*time.Second)
		p.typeInto("#f-name", "Console lucky draw")
		p.typeInto("#f-perUserLimit", "1")
		eval[chromedp.Void](p, `document.querySelector('#f-stock').value = '0'`)
		p.click("#save")
		p.waitFor("the stock's range", `document.querySelector('#f-stock-error').textContent === 'Stock must be a whole number from 1 to 10,000,000.'`, 5*time.Second)
		if other := eval[string](p, `[...document.querySelectorAll('.field-error')].filter(e => e.id !== 'f-stock-error').map(e => e.textContent).join('')`); other != "" {
			t.Errorf("other fields show errors: %q", other)
		}
		var list struct{ Activities []adminActivity }
		send(t, app, "GET", "/api/v1/admin/activities", "", &list)
		if len(list.Activities) != 0 {
			t.Fatalf("an invalid form created %d activities", len(list.Activities))
		}
	})
	ok = ok && t.Run("CreateInLocalTimeStoredAsUTC", func(t *testing.T) {
		p.t = t
		p.typeInto("#f-stock", strconv.Itoa(stock))
		if e := p.text("#f-stock-error"); e != "" {
			t.Errorf("the stock error stays after the field was changed: %q", e)
		}
		p.click("#save")
		p.waitFor("the activity's page", `/^#\/activities\/\d+$/.test(location.hash) && document.querySelector('#a-name')?.textContent === 'Console lucky draw'`, 10*time.Second)
		id = int64(eval[int](p, `Number(location.hash.split('/')[2])`))
		a := getActivity(t, app, id)
		if a.State != "draft" || a.Stock != stock || a.PerUserLimit != 1 || a.Shards != 1 {
			t.Errorf("created %+v, want a draft with stock %d, per-user limit 1, 1 shard", a, stock)
		}
		if !a.BeginAt.Equal(begin) || !a.EndAt.Equal(end) || a.BeginAt.Location() != time.UTC {
			t.Errorf("stored window %s – %s, want %s – %s (entered as %s in %s)", a.BeginAt, a.EndAt,
				begin.UTC(), end.UTC(), begin.Format("2006-01-02T15:04"), consoleTimeZone)
		}
	})
	ok = ok && t.Run("EditDraft", func(t *testing.T) {
		p.t = t
		p.click("#action-edit")
		p.waitFor("the edit form, filled", `document.querySelector('#f-name')?.value === 'Console lucky draw'`, 10*time.Second)
		if got := eval[string](p, `document.querySelector('#f-beginAt').value`); got != begin.Format("2006-01-02T15:04") {
			t.Errorf("the edit form shows beginAt %q, want %q (local time)", got, begin.Format("2006-01-02T15:04"))
		}
		// An end before the beginning: said on the end field, in its words.
		p.setValue("#f-endAt", begin.Add(-time.Hour).Format("2006-01-02T15:04"))
		p.click("#save")
		p.waitFor("the end field says why",
			`document.querySelector('#f-endAt-error').textContent === 'Ends must be after Begins.'`, 10*time.Second)
		p.setValue("#f-endAt", end.Format("2006-01-02T15:04"))
		p.typeInto("#f-name", "Console lucky draw, edited")
		p.typeInto("#f-shards", "4")
		p.click("#save")
		p.waitFor("the edited activity's page", `document.querySelector('#a-name')?.textContent === 'Console lucky draw, edited'`, 10*time.Second)
		a := getActivity(t, app, id)
		if a.Name != "Console lucky draw, edited" || a.Shards != 4 || !a.BeginAt.Equal(begin) || !a.EndAt.Equal(end) || a.Stock != stock {
			t.Errorf("after the edit: %+v; want the new name, 4 shards and the rest unchanged", a)
		}
		if got := eval[string](p, `[...document.querySelectorAll('.facts > div')].filter(d => d.querySelector('dt').textContent === 'Shards').map(d => d.querySelector('dd').textContent).join()`); got != "4" {
			t.Errorf("the activity's page shows shards %q, want 4", got)
		}
	})

	// enabled reads which of the page's action buttons can be clicked.
	enabled := func() string {
		return eval[string](p, `['edit', 'approve', 'refuse', 'open', 'close'].filter(a => !document.querySelector('#action-' + a).disabled).join(' ')`)
	}
	ok = ok && t.Run("ApproveAndOpen", func(t *testing.T) {
		p.t = t
		if got := enabled(); got != "edit approve refuse" {
			t.Errorf("draft: enabled %q, want %q", got, "edit approve refuse")
		}
		// Cancel asks nothing of the server.
		p.confirm("#action-refuse", false)
		if a := getActivity(t, app, id); a.State != "draft" {
			t.Fatalf("refuse was cancelled, but the activity is %s", a.State)
		}
		p.confirm("#action-approve", true)
		p.waitFor("approved", `document.querySelector('#a-state .badge')?.dataset.state === 'approved'`, 10*time.Second)
		if got := enabled(); got != "open" {
			t.Errorf("approved: enabled %q, want %q", got, "open")
		}
		// Why the others are disabled is written out, not only a tooltip.
		if note := p.text("#actions-note"); !strings.Contains(note, "sent back to draft") || !p.shown("#actions-note") {
			t.Errorf("the state note says %q (shown: %v)", note, p.shown("#actions-note"))
		}
		// Back to draft, and approved again.
		p.confirm("#action-draft", true)
		p.waitFor("a draft again", `document.querySelector('#a-state .badge')?.dataset.state === 'draft' && !document.querySelector('#action-edit').disabled`, 10*time.Second)
		if a := getActivity(t, app, id); a.State != "draft" {
			t.Fatalf("back to draft: the API says %s", a.State)
		}
		p.confirm("#action-approve", true)
		p.waitFor("approved again", `document.querySelector('#a-state .badge')?.dataset.state === 'approved'`, 10*time.Second)
		p.click("#action-open")
		p.waitFor("the open dialog", `document.querySelector('#confirm')?.open`, 5*time.Second)
		if msg := p.text("#confirm-text"); !strings.Contains(msg, "Console lucky draw, edited") || !strings.Contains(msg, "50 slots") {
			t.Errorf("the open confirmation says %q; want the name and the stock", msg)
		}
		p.click("#confirm-ok")
		p.waitFor("open", `document.querySelector('#a-state .badge')?.dataset.state === 'open'`, 10*time.Second)
		if got := enabled(); got != "close" {
			t.Errorf("open: enabled %q, want %q", got, "close")
		}
		if a := getActivity(t, app, id); a.State != "open" {
			t.Fatalf("the API says %s, want open", a.State)
		}
	})

	ok = ok && t.Run("LiveViewSellsOutAndConverges", func(t *testing.T) {
		p.t = t
		p.waitFor("the live view of the open activity", `document.querySelector('#live-status')?.dataset.status === 'selling'`, 10*time.Second)
		// Mark the page, to tell later that it was never reloaded, and
		// record every status the live view goes through.
		eval[chromedp.Void](p, `window.noReload = true; window.statuses = [];
			new MutationObserver(() => {
				const s = document.querySelector('#live-status').dataset.status;
				if (window.statuses.at(-1) !== s) window.statuses.push(s);
			}).observe(document.querySelector('#live-status'), {attributes: true})`)

		// The burst: 80 users, 5 at a time every 350 ms, so that it lasts a
		// few refreshes of the live view.
		done := make(chan []joinAnswer, 1)
		go func() {
			var all []joinAnswer
			us := users("console-u", crowdSize)
			for i := 0; i < len(us); i += 5 {
				all = append(all, crowd(app.URL(), id, us[i:i+5], 5)...)
				time.Sleep(350 * time.Millisecond)
			}
			done <- all
		}()
		p.waitFor("the live view shows claims during the burst", `Number(document.querySelector('#gauge-claimed')?.textContent) >= 30`, 30*time.Second)
		if os.Getenv("SECKILL_UPDATE_SCREENSHOT") == "1" {
			eval[chromedp.Void](p, `window.scrollTo(0, 0)`)
			p.screenshot(screenshotPath)
		}
		answers := <-done

		got := tokens(t, answers)
		for tok := range got {
			saleToken = tok
			break
		}
		for _, a := range answers {
			if a.status != http.StatusOK && a.code != "sold_out" {
				t.Errorf("join of %s: %d %s", a.user, a.status, a.code)
			}
		}
		if len(got) != stock {
			t.Fatalf("%d tokens, want %d", len(got), stock)
		}

		p.waitFor("the live view shows converged", `document.querySelector('#live-status')?.dataset.status === 'converged'`, 30*time.Second)
		for sel, want := range map[string]int64{"#gauge-claimed": stock, "#live-issued": stock, "#live-recorded": stock,
			"#live-inflight": 0, "#live-surplus": 0} {
			if n := p.number(sel); n != want {
				t.Errorf("converged, but %s shows %d, want %d", sel, n, want)
			}
		}
		if title := p.text("#live-status-title"); !strings.Contains(title, "saved to the database ✓") {
			t.Errorf("the status says %q, want it to say every winner is saved to the database", title)
		}
		for sel, want := range map[string]string{"#live-winners": "50", "#live-left": "0", "#live-saved": "50 ✓"} {
			if got := p.text(sel); got != want {
				t.Errorf("%s shows %q, want %q", sel, got, want)
			}
		}
		// Turned-away joins reach Redis about once a second.
		p.waitFor("the turned away counted", fmt.Sprintf(`document.querySelector('#live-turned').textContent === '%d'`, crowdSize-stock), 5*time.Second)
		if n := p.number("#live-turned"); n != crowdSize-stock {
			t.Errorf("turned away %d, want %d", n, crowdSize-stock)
		}
		if note := p.text("#live-turned-note"); !strings.Contains(note, fmt.Sprintf("sold out %d", crowdSize-stock)) {
			t.Errorf("the turned-away note says %q", note)
		}
		if peak := p.number("#live-jps-peak"); peak <= 0 {
			t.Errorf("peak joins per second %d during the burst, want more than 0", peak)
		}
		if !eval[bool](p, `window.noReload === true`) {
			t.Error("the page was reloaded during the live view")
		}
		statuses := eval[[]string](p, `window.statuses`)
		if len(statuses) == 0 || statuses[len(statuses)-1] != "converged" || strings.Count(strings.Join(statuses, " "), "converged") != 1 {
			t.Errorf("the live view went through %v; want it to reach converged once, at the end", statuses)
		}
		// The console says converged only when the API does.
		converged(t, app, id, stock, stock)
		p.noHorizontalScroll("live view, laptop")
		p.accessible("live view, laptop")
	})

	ok = ok && t.Run("ChangeStockAfterTheSellOut", func(t *testing.T) {
		p.t = t
		p.click("#action-stock")
		p.waitFor("the stock form", `!document.querySelector('#stock-form').hidden`, 5*time.Second)
		// Below the claimed slots: the API refuses, the form says why.
		p.setValue("#stock-input", "40")
		p.confirm("#stock-apply", true)
		p.waitFor("the refusal under the field", `document.querySelector('#stock-error').textContent.includes('50 slots are claimed')`, 10*time.Second)
		if a := getActivity(t, app, id); a.Stock != stock {
			t.Fatalf("a refused change left stock %d, want %d", a.Stock, stock)
		}
		// Cancelled: nothing changes.
		p.setValue("#stock-input", "55")
		p.confirm("#stock-apply", false)
		if a := getActivity(t, app, id); a.Stock != stock {
			t.Fatalf("a cancelled change left stock %d, want %d", a.Stock, stock)
		}
		p.confirm("#stock-apply", true)
		p.waitFor("the new stock in the live view", `document.querySelector('#gauge-stock').textContent === '55'`, 10*time.Second)
		if a := getActivity(t, app, id); a.Stock != 55 {
			t.Fatalf("the API says stock %d, want 55", a.Stock)
		}
		p.waitFor("selling again", `document.querySelector('#live-status')?.dataset.status === 'selling'`, 10*time.Second)
		time.Sleep(300 * time.Millisecond) // the instance trusts its sell-out for 200 ms
		more := tokens(t, crowd(app.URL(), id, users("console-more", 10), 5))
		if len(more) != 5 {
			t.Fatalf("%d tokens after raising the stock by 5", len(more))
		}
		converged(t, app, id, 55, 55)
		p.waitFor("converged again", `document.querySelector('#live-status')?.dataset.status === 'converged'`, 30*time.Second)
	})

	ok = ok && t.Run("ExportWinnersCSV", func(t *testing.T) {
		p.t = t
		dir := t.TempDir()
		p.call("downloads into "+dir, func(ctx context.Context) error {
			_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir})
			return err
		})
		p.click("#export-csv")
		p.waitFor("the export's status", `document.querySelector('#export-status').textContent.includes('55 winners')`, 15*time.Second)
		file := filepath.Join(dir, fmt.Sprintf("activity-%d-winners.csv", id))
		var rows [][]string
		eventually(t, 10*time.Second, "the downloaded CSV", func() bool {
			f, err := os.Open(file)
			if err != nil {
				return false
			}
			defer f.Close()
			rows, err = csv.NewReader(f).ReadAll()
			return err == nil && len(rows) == 56
		})
		if strings.Join(rows[0], ",") != "token,slot,userId,issuedAt,redeemedAt" {
			t.Fatalf("header row %v", rows[0])
		}
		found := false
		for _, r := range rows[1:] {
			found = found || r[0] == saleToken
		}
		if !found {
			t.Fatalf("the CSV lacks the token %s of the sale", saleToken)
		}
	})

	ok = ok && t.Run("TokenLookupAndRedeem", func(t *testing.T) {
		p.t = t
		p.click(`nav a[href="#/tokens"]`)
		p.waitFor("the token page", `!!document.querySelector('#token-input')`, 5*time.Second)
		p.setValue("#token-input", saleToken[:len(saleToken)-2]+"zz")
		p.click("#token-lookup")
		p.waitFor("an altered token is told", `document.querySelector('#token-error').textContent.includes('Not a valid token')`, 10*time.Second)
		p.setValue("#token-input", saleToken)
		p.click("#token-lookup")
		p.waitFor("the token's state", `document.querySelector('#token-state')?.dataset.redeemed === 'false'`, 10*time.Second)
		p.confirm("#token-redeem", true)
		p.waitFor("redeemed", `document.querySelector('#token-state')?.dataset.redeemed === 'true'`, 10*time.Second)
		p.accessible("tokens, laptop")
		if !eval[bool](p, `document.querySelector('#token-redeem').disabled`) {
			t.Error("the redeem button is still enabled for a redeemed token")
		}
		var got struct{ RedeemedAt *time.Time }
		if code := send(t, app, "GET", "/api/v1/tokens/"+saleToken, "", &got); code != http.StatusOK || got.RedeemedAt == nil {
			t.Fatalf("the API says %d, redeemedAt %v; want the token redeemed", code, got.RedeemedAt)
		}
		// Looked up again, it says when.
		p.click("#token-lookup")
		p.waitFor("redeemed, on a fresh look-up", `document.querySelector('#token-state')?.dataset.redeemed === 'true' && document.querySelector('#token-state').textContent.includes('Redeemed on')`, 10*time.Second)
		p.do("back to the live view", chromedp.Navigate(fmt.Sprintf("%s/console/#/activities/%d", app.URL(), id)))
		p.waitFor("the live view", `document.querySelector('#live-status')?.dataset.status === 'converged'`, 10*time.Second)
	})

	ok = ok && t.Run("AutoOpenSwitch", func(t *testing.T) {
		p.t = t
		var other struct{ ID int64 }
		body := fmt.Sprintf(`{"name":"scheduled","stock":5,"beginAt":%q,"endAt":%q}`,
			time.Now().Add(time.Hour).UTC().Format(time.RFC3339), time.Now().Add(2*time.Hour).UTC().Format(time.RFC3339))
		if code := send(t, app, "POST", "/api/v1/admin/activities", body, &other); code != http.StatusCreated {
			t.Fatalf("create: %d", code)
		}
		if code := send(t, app, "POST", fmt.Sprintf("/api/v1/admin/activities/%d/approve", other.ID), "", nil); code != http.StatusOK {
			t.Fatalf("approve: %d", code)
		}
		p.do("its live view", chromedp.Navigate(fmt.Sprintf("%s/console/#/activities/%d", app.URL(), other.ID)))
		p.waitFor("the switch, off and enabled", `(() => { const b = document.querySelector('#auto-open'); return b && !b.disabled && !b.checked; })()`, 10*time.Second)
		p.click("#auto-open")
		var got struct{ AutoOpen bool }
		eventually(t, 10*time.Second, "autoOpen on in the API", func() bool {
			send(t, app, "GET", fmt.Sprintf("/api/v1/admin/activities/%d", other.ID), "", &got)
			return got.AutoOpen
		})
		p.waitFor("the note says when", `document.querySelector('#auto-open-note').textContent.includes('opens at')`, 5*time.Second)
		p.do("back to the live view", chromedp.Navigate(fmt.Sprintf("%s/console/#/activities/%d", app.URL(), id)))
		p.waitFor("the live view", `document.querySelector('#live-status')?.dataset.status === 'converged'`, 10*time.Second)
		if !eval[bool](p, `document.querySelector('#auto-open').disabled`) {
			t.Error("the switch is enabled on an open activity")
		}
		if eval[bool](p, `document.querySelector('#auto-open').getClientRects().length > 0`) {
			t.Error("the switch is shown on an open activity")
		}
	})

	ok = ok && t.Run("Close", func(t *testing.T) {
		p.t = t
		p.confirm("#action-close", true)
		p.waitFor("closed", `document.querySelector('#a-state .badge')?.dataset.state === 'closed'`, 10*time.Second)
		if got := enabled(); got != "" {
			t.Errorf("closed: enabled %q, want none", got)
		}
		if a := getActivity(t, app, id); a.State != "closed" {
			t.Fatalf("the API says %s, want closed", a.State)
		}
		if a := joinHTTP(app.URL(), id, "after-close"); a.status != http.StatusConflict || a.code != "not_open" {
			t.Errorf("join after close: %d %s, want 409 not_open", a.status, a.code)
		}
		// The summary is kept with the activity: there after a reload.
		p.waitFor("the sale summary", `!document.querySelector('#summary').hidden && document.querySelector('#summary-winners')?.textContent === '55'`, 15*time.Second)
		p.do("reload", chromedp.Reload())
		p.waitFor("the sale summary after a reload", `document.querySelector('#summary-winners')?.textContent === '55'`, 15*time.Second)
		if peak := p.number("#live-jps-peak"); peak <= 0 {
			t.Errorf("after a reload the peak shows %d, want the sale's", peak)
		}
		if d := p.text("#summary-duration"); d == "" {
			t.Error("the summary has no duration")
		}
	})

	ok = ok && t.Run("ListFiltersByState", func(t *testing.T) {
		p.t = t
		p.click(".crumbs a")
		row := fmt.Sprintf(`#activity-rows tr[data-id="%d"]`, id)
		p.waitFor("the list with the activity's counts", fmt.Sprintf(`document.querySelector('%s .counts')?.textContent === '55 of 55 ✓ saved'`, row), 10*time.Second)
		choose := func(state string) {
			eval[chromedp.Void](p, fmt.Sprintf(`{const s = document.querySelector('#filter-state'); s.value = %q; s.dispatchEvent(new Event('change'))}`, state))
		}
		choose("closed")
		p.waitFor("closed activities", fmt.Sprintf(`location.hash === '#/?state=closed' && document.querySelectorAll('#activity-rows tr').length === 1 && !!document.querySelector('%s')`, row), 10*time.Second)
		if st := p.text(row + " .badge"); st != "closed" {
			t.Errorf("the row's state shows %q, want closed", st)
		}
		choose("draft")
		p.waitFor("no drafts", `location.hash === '#/?state=draft' && document.querySelector('#list-status')?.textContent === 'No activity is draft.'`, 10*time.Second)
	})

	ok = ok && t.Run("ListPagesNewestFirst", func(t *testing.T) {
		p.t = t
		// 10 more drafts: with the sale and the scheduled one, 12 activities,
		// a page of 10 and a page of 2.
		var last int64
		for i := range 10 {
			body := fmt.Sprintf(`{"name":"page %d","stock":5,"beginAt":%q,"endAt":%q}`, i,
				begin.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339))
			var a adminActivity
			if code := send(t, app, "POST", "/api/v1/admin/activities", body, &a); code != http.StatusCreated {
				t.Fatalf("create: %d", code)
			}
			last = a.ID
		}
		p.do("the first page", chromedp.Navigate(app.URL()+"/console/#/"))
		rows := func() []int64 {
			return eval[[]int64](p, `[...document.querySelectorAll('#activity-rows tr')].map(r => Number(r.dataset.id))`)
		}
		p.waitFor("the first page", `document.querySelectorAll('#activity-rows tr').length === 10 && !document.querySelector('#page-next')?.disabled`, 10*time.Second)
		p.waitFor("the total in the pager", `document.querySelector('#page-range').textContent === '1–10 of 12'`, 5*time.Second)
		first := rows()
		if first[0] != last {
			t.Errorf("the first row is %d, want the newest, %d", first[0], last)
		}
		for i := 1; i < len(first); i++ {
			if first[i] >= first[i-1] {
				t.Fatalf("rows %v are not newest first", first)
			}
		}
		p.click("#page-next")
		p.waitFor("the second page", `location.hash.includes('offset=10') && document.querySelectorAll('#activity-rows tr').length === 2`, 10*time.Second)
		second := rows()
		if second[len(second)-1] != id || second[0] >= first[len(first)-1] {
			t.Errorf("second page %v after %v; want it to end with the oldest, %d", second, first, id)
		}
		if !eval[bool](p, `document.querySelector('#page-next').disabled && !document.querySelector('#page-prev').disabled`) {
			t.Error("on the last page: want Older disabled and Newer enabled")
		}
		if r := p.text("#page-range"); r != "11–12 of 12" {
			t.Errorf("the pager says %q on the last page, want 11–12 of 12", r)
		}
		p.click("#page-prev")
		p.waitFor("back on the first page", `!location.hash.includes('offset') && document.querySelectorAll('#activity-rows tr').length === 10`, 10*time.Second)
		p.accessible("list, laptop")
	})

	ok = ok && t.Run("SearchAndSort", func(t *testing.T) {
		p.t = t
		// Typed, not submitted: the list follows the words, keeping the focus.
		p.click("#search")
		p.do("type a search", chromedp.SendKeys(chromedp.CSS("#search"), "LUCKY"))
		row := fmt.Sprintf(`#activity-rows tr[data-id="%d"]`, id)
		p.waitFor("the search's one row", fmt.Sprintf(`location.hash === '#/?q=LUCKY' && document.querySelectorAll('#activity-rows tr').length === 1 && !!document.querySelector('%s')`, row), 10*time.Second)
		if f := eval[string](p, `document.activeElement.id`); f != "search" {
			t.Errorf("after the search the focus is on %q, want the search box", f)
		}
		if r := p.text("#page-range"); r != "1–1 of 1" {
			t.Errorf("the pager says %q, want 1–1 of 1", r)
		}
		p.typeInto("#search", "no such thing")
		p.waitFor("nothing found", `(document.querySelector('#list-status')?.textContent || '').includes('has “no such thing” in its name')`, 10*time.Second)
		// Latest beginning first: the scheduled one, an hour ahead.
		p.do("the list by beginning", chromedp.Navigate(app.URL()+"/console/#/?sort=-beginAt"))
		p.waitFor("sorted by the beginning", `document.querySelector('#sort').value === '-beginAt' && document.querySelectorAll('#activity-rows tr').length === 10`, 10*time.Second)
		if first := p.text("#activity-rows tr .name"); first != "scheduled" {
			t.Errorf("latest beginning first: the first row is %q, want scheduled", first)
		}
		eval[chromedp.Void](p, `{const s = document.querySelector('#sort'); s.value = 'beginAt'; s.dispatchEvent(new Event('change'))}`)
		p.waitFor("earliest beginning first", `location.hash === '#/?sort=beginAt' && document.querySelectorAll('#activity-rows tr').length === 10`, 10*time.Second)
		if last := eval[string](p, `[...document.querySelectorAll('#activity-rows .name')].map(n => n.textContent).join(',')`); strings.Contains(last, "scheduled") {
			t.Errorf("earliest beginning first, the first page lists the latest: %s", last)
		}
	})

	ok = ok && t.Run("DuplicateARefusedOne", func(t *testing.T) {
		p.t = t
		body := fmt.Sprintf(`{"name":"refused draw","stock":7,"perUserLimit":2,"beginAt":%q,"endAt":%q}`,
			time.Now().Add(time.Hour).UTC().Format(time.RFC3339), time.Now().Add(2*time.Hour).UTC().Format(time.RFC3339))
		var refused adminActivity
		if code := send(t, app, "POST", "/api/v1/admin/activities", body, &refused); code != http.StatusCreated {
			t.Fatalf("create: %d", code)
		}
		if code := send(t, app, "POST", fmt.Sprintf("/api/v1/admin/activities/%d/refuse", refused.ID), "", nil); code != http.StatusOK {
			t.Fatalf("refuse: %d", code)
		}
		p.do("the refused one", chromedp.Navigate(fmt.Sprintf("%s/console/#/activities/%d", app.URL(), refused.ID)))
		p.waitFor("refused, duplicate enabled", `document.querySelector('#a-state .badge')?.dataset.state === 'refused' && !document.querySelector('#action-duplicate').disabled`, 10*time.Second)
		if note := p.text("#actions-note"); !strings.Contains(note, "Duplicate") {
			t.Errorf("a refused activity's note says %q; want it to offer Duplicate", note)
		}
		p.click("#action-duplicate")
		p.waitFor("the copy's form", `/^#\/activities\/\d+\/edit$/.test(location.hash) && document.querySelector('#f-name')?.value === 'refused draw (copy)'`, 10*time.Second)
		copyID := int64(eval[int](p, `Number(location.hash.split('/')[2])`))
		if copyID == refused.ID {
			t.Fatal("the duplicate is the refused activity itself")
		}
		p.typeInto("#f-name", "refused draw, corrected")
		p.click("#save")
		p.waitFor("the corrected draft", `document.querySelector('#a-name')?.textContent === 'refused draw, corrected' && document.querySelector('#a-state .badge')?.dataset.state === 'draft'`, 10*time.Second)
		if a := getActivity(t, app, copyID); a.State != "draft" || a.Stock != 7 || a.PerUserLimit != 2 {
			t.Errorf("the copy is %+v, want a draft with stock 7, per-user limit 2", a)
		}
	})

	ok = ok && t.Run("Phone", func(t *testing.T) {
		p.t = t
		p.do("a phone's screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
		p.do("the list", chromedp.Navigate(app.URL()+"/console/#/"))
		p.waitFor("the list as cards", `document.querySelectorAll('#activity-rows tr').length === 10 && getComputedStyle(document.querySelector('#activities thead')).display === 'none'`, 10*time.Second)
		p.noHorizontalScroll("list, phone")
		p.accessible("list, phone")
		p.do("the form", chromedp.Navigate(app.URL()+"/console/#/new"))
		p.do("the form on a phone", chromedp.WaitVisible(chromedp.ID("f-name")))
		p.click("#save")
		p.waitFor("the form's errors", `document.querySelector('#f-name-error').textContent !== ''`, 5*time.Second)
		p.noHorizontalScroll("form, phone")
		p.accessible("form, phone")
		p.do("the live view", chromedp.Navigate(fmt.Sprintf("%s/console/#/activities/%d", app.URL(), id)))
		p.waitFor("the live view on a phone", `document.querySelector('#live-status')?.dataset.status === 'converged' && !document.querySelector('#summary').hidden`, 10*time.Second)
		p.noHorizontalScroll("live view, phone")
		p.accessible("live view, phone")
		// The dark scheme keeps its contrasts too.
		p.call("a dark scheme", func(ctx context.Context) error {
			_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
			return err
		})
		if !eval[bool](p, `matchMedia('(prefers-color-scheme: dark)').matches`) {
			t.Fatal("the page is not in the dark scheme")
		}
		p.accessible("live view, phone, dark")
		p.call("the light scheme", func(ctx context.Context) error {
			_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "light"}}})
			return err
		})
		if os.Getenv("SECKILL_UPDATE_SCREENSHOT") == "1" {
			eval[chromedp.Void](p, `window.scrollTo(0, 0)`)
			p.screenshot(phoneScreenshotPath)
		}
	})

	ok = ok && t.Run("SignOutForgetsTheToken", func(t *testing.T) {
		p.t = t
		p.click("#sign-out")
		p.waitFor("the sign-in form", `!!document.querySelector('#token')`, 5*time.Second)
		if n := eval[int](p, `sessionStorage.length`); n != 0 {
			t.Errorf("sessionStorage holds %d items after sign-out", n)
		}
		p.noHorizontalScroll("sign-in, phone")
		p.accessible("sign-in, phone")
	})
	_ = ok

	p.t = t
	p.checkNoProblems()
}

// staffMember is a staff account a test made, with its token.
type staffMember struct {
	Name, Role, Token string
}

// addStaff creates a staff account with the admin token.
func addStaff(t *testing.T, app *App, name, role string) staffMember {
	t.Helper()
	var st staffMember
	if code := send(t, app, "POST", "/api/v1/admin/staff", fmt.Sprintf(`{"name":%q,"role":%q}`, name, role), &st); code != http.StatusCreated {
		t.Fatalf("add staff %s (%s): %d", name, role, code)
	}
	if st.Token == "" {
		t.Fatalf("add staff %s: no token in the answer", name)
	}
	return st
}

// staffCall makes one request to app with a staff member's token and
// returns its status.
func staffCall(t *testing.T, app *App, tok, method, path, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, app.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// signIn signs the console in with tok, from the sign-in form, and waits
// for the header to name who is signed in.
func (p *browserPage) signIn(tok, who string) {
	p.t.Helper()
	p.do("the sign-in form", chromedp.WaitVisible(chromedp.ID("token")))
	p.typeInto("#token", tok)
	p.click("#signin-submit")
	p.waitFor("signed in as "+who, fmt.Sprintf(`document.querySelector('#whoami')?.textContent === %q`, "Signed in as "+who), 10*time.Second)
}

// signOut signs the console out and waits for the sign-in form.
func (p *browserPage) signOut() {
	p.t.Helper()
	p.click("#sign-out")
	p.waitFor("the sign-in form", `!!document.querySelector('#token')`, 5*time.Second)
}

// shown reports whether the element of sel is displayed with some text.
func (p *browserPage) shown(sel string) bool {
	p.t.Helper()
	return eval[bool](p, fmt.Sprintf(`(() => { const e = document.querySelector(%q);
		return !!e && e.getClientRects().length > 0 && e.textContent.trim() !== ''; })()`, sel))
}

// TestConsoleRoles signs the web console in with staff tokens against a
// real App: an editor creates a draft and finds Approve disabled, with the
// reason shown; an approver who created a draft (as an editor, before a
// change of role) finds it disabled by four eyes; another approver
// approves the editor's draft, and the activity's audit section lists the
// create and the approve, by whom, newest first, and pages to older
// entries; a draw account lands on the tokens page and may redeem, a
// viewer may not; and too many failed sign-ins are told as such.
func TestConsoleRoles(t *testing.T) {
	p := newBrowserPage(t)
	app := startApp(t, testConfig(t))
	local := time.FixedZone(consoleTimeZone, int(consoleOffset/time.Second))
	editor := addStaff(t, app, "erin", "editor")
	approver := addStaff(t, app, "abel", "approver")
	draw := addStaff(t, app, "dora", "draw")
	viewer := addStaff(t, app, "vic", "viewer")
	var id int64
	activityPage := func(id int64) string { return fmt.Sprintf("%s/console/#/activities/%d", app.URL(), id) }

	ok := t.Run("EditorSignsIn", func(t *testing.T) {
		p.t = t
		p.do("open the console", chromedp.Navigate(app.URL()+"/console/"))
		if text := p.text("#signin-text"); !strings.Contains(text, "admin token") || !strings.Contains(text, "your personal token") {
			t.Errorf("the sign-in text says %q; want it to ask for the admin token or a personal one", text)
		}
		p.signIn(editor.Token, "erin (editor)")
		p.waitFor("the activities list", `document.querySelector('#list-status')?.textContent.includes('No activities yet')`, 10*time.Second)
		if eval[bool](p, `document.querySelector('#nav-new').hidden || !!document.querySelector('#new-activity').disabled`) {
			t.Error("an editor may not create activities, says the console")
		}
	})
	ok = ok && t.Run("EditorCreatesADraftButMayNotApprove", func(t *testing.T) {
		p.t = t
		begin := time.Now().In(local).Add(-time.Minute).Truncate(time.Minute)
		p.click("#new-activity")
		p.do("the form", chromedp.WaitVisible(chromedp.ID("f-name")))
		p.typeInto("#f-name", "Roles draw")
		p.typeInto("#f-stock", "50")
		p.setValue("#f-beginAt", begin.Format("2006-01-02T15:04"))
		p.setValue("#f-endAt", begin.Add(2*time.Hour).Format("2006-01-02T15:04"))
		p.click("#save")
		p.waitFor("the draft's page", `document.querySelector('#a-name')?.textContent === 'Roles draw' && document.querySelector('#a-state .badge')?.dataset.state === 'draft'`, 10*time.Second)
		id = int64(eval[int](p, `Number(location.hash.split('/')[2])`))
		p.waitFor("the buttons set for the role", `!document.querySelector('#action-edit').disabled`, 5*time.Second)
		for _, b := range []string{"#action-approve", "#action-refuse"} {
			if by := eval[string](p, `document.querySelector('`+b+`').disabled ? document.querySelector('`+b+`').dataset.disabledBy : 'enabled'`); by != "role" {
				t.Errorf("%s for an editor: %s, want disabled by the role", b, by)
			}
		}
		if note := p.text("#role-note"); !strings.Contains(note, "Your role (editor) may not approve") || !p.shown("#role-note") {
			t.Errorf("the role note says %q (shown: %v); want it to say the editor may not approve", note, p.shown("#role-note"))
		}
		p.waitFor("the create in the audit section", `!!document.querySelector('#audit-rows tr[data-action="create"][data-actor="erin"]')`, 10*time.Second)
		if who := p.text(`#audit-rows tr[data-action="create"] .who`); who != "erin (editor)" {
			t.Errorf("the create is by %q, want erin (editor)", who)
		}
	})
	ok = ok && t.Run("FourEyesDisableApprove", func(t *testing.T) {
		p.t = t
		// fay creates a draft as an editor, then becomes an approver: she
		// may not approve her own draft.
		fay := addStaff(t, app, "fay", "editor")
		var own struct{ ID int64 }
		body := fmt.Sprintf(`{"name":"fay's draft","stock":5,"beginAt":%q,"endAt":%q}`,
			time.Now().Add(time.Hour).UTC().Format(time.RFC3339), time.Now().Add(2*time.Hour).UTC().Format(time.RFC3339))
		req, _ := http.NewRequest("POST", app.URL()+"/api/v1/admin/activities", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+fay.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&own)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || err != nil {
			t.Fatalf("fay creates a draft: %d %v", resp.StatusCode, err)
		}
		if code := send(t, app, "DELETE", "/api/v1/admin/staff/fay", "", nil); code != http.StatusNoContent {
			t.Fatalf("remove fay: %d", code)
		}
		fay = addStaff(t, app, "fay", "approver")
		if code := staffCall(t, app, fay.Token, "POST", fmt.Sprintf("/api/v1/admin/activities/%d/approve", own.ID), ""); code != http.StatusForbidden {
			t.Fatalf("the server lets fay approve her own draft: %d, want 403", code)
		}

		p.signOut()
		p.signIn(fay.Token, "fay (approver)")
		p.do("fay's draft", chromedp.Navigate(activityPage(own.ID)))
		p.waitFor("the draft", `document.querySelector('#a-state .badge')?.dataset.state === 'draft'`, 10*time.Second)
		if by := eval[string](p, `document.querySelector('#action-approve').dataset.disabledBy || 'enabled'`); by != "four-eyes" {
			t.Errorf("approve of her own draft: %s, want disabled by four eyes", by)
		}
		if note := p.text("#four-eyes-note"); !strings.Contains(note, "you (fay) created this draft") || !p.shown("#four-eyes-note") {
			t.Errorf("the four-eyes note says %q (shown: %v)", note, p.shown("#four-eyes-note"))
		}
		// The editor's draft she may approve.
		p.do("the editor's draft", chromedp.Navigate(activityPage(id)))
		p.waitFor("approve enabled", `document.querySelector('#a-name')?.textContent === 'Roles draw' && !document.querySelector('#action-approve').disabled`, 10*time.Second)
		if note := p.text("#four-eyes-note"); note != "" {
			t.Errorf("the four-eyes note on another's draft says %q", note)
		}
	})
	ok = ok && t.Run("ApproverApproves", func(t *testing.T) {
		p.t = t
		p.signOut()
		p.signIn(approver.Token, "abel (approver)")
		if p.shown("#nav-new") {
			t.Error("the nav offers an approver to create activities")
		}
		p.do("the editor's draft", chromedp.Navigate(activityPage(id)))
		p.waitFor("approve enabled", `document.querySelector('#a-name')?.textContent === 'Roles draw' && !document.querySelector('#action-approve').disabled`, 10*time.Second)
		if by := eval[string](p, `document.querySelector('#action-edit').dataset.disabledBy || 'enabled'`); by != "role" {
			t.Errorf("edit for an approver: %s, want disabled by the role", by)
		}
		if note, want := p.text("#role-note"), "Your role (approver) may not edit, duplicate, change the stock or switch “Open by itself”."; note != want {
			t.Errorf("the role note says %q, want %q", note, want)
		}
		p.confirm("#action-approve", true)
		p.waitFor("approved", `document.querySelector('#a-state .badge')?.dataset.state === 'approved'`, 10*time.Second)
		if a := getActivity(t, app, id); a.State != "approved" {
			t.Fatalf("the API says %s, want approved", a.State)
		}
		p.waitFor("the approve in the audit section", `document.querySelector('#audit-rows tr')?.dataset.action === 'approve'`, 10*time.Second)
		rows := eval[[]string](p, `[...document.querySelectorAll('#audit-rows tr')].map(r => r.dataset.action + ' ' + r.querySelector('.who').textContent + ': ' + r.querySelector('.what').textContent)`)
		want := []string{"approve abel (approver): state draft → approved", "create erin (editor): created"}
		if strings.Join(rows, "\n") != strings.Join(want, "\n") {
			t.Errorf("the audit section lists\n%s\nwant\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
		}
		if p.shown("#audit-older") {
			t.Error("Older is offered with two entries")
		}
		at := eval[string](p, `document.querySelector('#audit-rows tr time').textContent`)
		if _, err := time.Parse(time.RFC3339, at); err == nil || at == "" {
			t.Errorf("the audit time shows %q; want it in the local zone, not RFC 3339", at)
		}
	})
	ok = ok && t.Run("AuditPagesOlder", func(t *testing.T) {
		p.t = t
		// 20 stock changes: with the create and the approve, 22 entries, a
		// page of 20 and a page of 2.
		for n := 51; n <= 70; n++ {
			if code := send(t, app, "POST", fmt.Sprintf("/api/v1/admin/activities/%d/stock", id), fmt.Sprintf(`{"stock":%d}`, n), nil); code != http.StatusOK {
				t.Fatalf("stock %d: %d", n, code)
			}
		}
		p.do("the live view again", chromedp.Navigate(app.URL()+"/console/#/"), chromedp.Navigate(activityPage(id)))
		p.waitFor("the first page of the audit", `document.querySelectorAll('#audit-rows tr').length === 20 && document.querySelector('#audit-older').getClientRects().length > 0`, 10*time.Second)
		if top := p.text("#audit-rows tr .what"); top != "stock 69 → 70" {
			t.Errorf("the newest entry says %q, want %q", top, "stock 69 → 70")
		}
		p.click("#audit-older")
		p.waitFor("the older page", `document.querySelectorAll('#audit-rows tr').length === 22 && document.querySelector('#audit-older').getClientRects().length === 0`, 10*time.Second)
		if last := eval[string](p, `[...document.querySelectorAll('#audit-rows tr')].map(r => r.dataset.action).slice(-3).join(' ')`); last != "stock approve create" {
			t.Errorf("the last rows are %q, want %q", last, "stock approve create")
		}
	})

	var saleToken string
	ok = ok && t.Run("DrawRedeemsAndExports", func(t *testing.T) {
		p.t = t
		if code := send(t, app, "POST", fmt.Sprintf("/api/v1/admin/activities/%d/open", id), "", nil); code != http.StatusOK {
			t.Fatalf("open: %d", code)
		}
		j := joinHTTP(app.URL(), id, "roles-u1")
		if j.status != http.StatusOK || j.token == "" {
			t.Fatalf("join: %d %s", j.status, j.code)
		}
		saleToken = j.token
		p.signOut()
		p.do("the console's start", chromedp.Navigate(app.URL()+"/console/#/"))
		p.signIn(draw.Token, "dora (draw)")
		p.waitFor("the list", `!!document.querySelector('#activity-rows')`, 10*time.Second)
		if !p.shown("#nav-activities") || p.shown("#nav-new") || !p.shown("#nav-tokens") {
			t.Error("the nav offers the draw a page it may not use, or hides one it may")
		}
		p.click("#nav-tokens")
		p.waitFor("the tokens page", `location.hash === '#/tokens' && !!document.querySelector('#token-input')`, 10*time.Second)
		p.setValue("#token-input", saleToken)
		p.click("#token-lookup")
		p.waitFor("the token, redeemable", `document.querySelector('#token-state')?.dataset.redeemed === 'false' && !document.querySelector('#token-redeem').disabled`, 10*time.Second)
		p.do("an activity's page", chromedp.Navigate(activityPage(id)))
		p.waitFor("the draw may export the winners", `(() => { const b = document.querySelector('#export-csv'); return b && !b.disabled; })()`, 10*time.Second)
		if !eval[bool](p, `document.querySelector('#action-close').disabled`) {
			t.Error("close is enabled for the draw")
		}
	})
	ok = ok && t.Run("ViewerMayNotRedeem", func(t *testing.T) {
		p.t = t
		p.signOut()
		p.signIn(viewer.Token, "vic (viewer)")
		p.do("the token page", chromedp.Navigate(app.URL()+"/console/#/tokens?token="+saleToken))
		p.waitFor("the token", `document.querySelector('#token-state')?.dataset.redeemed === 'false'`, 10*time.Second)
		if by := eval[string](p, `document.querySelector('#token-redeem').disabled ? document.querySelector('#token-redeem').dataset.disabledBy : 'enabled'`); by != "role" {
			t.Errorf("redeem for a viewer: %s, want disabled by the role", by)
		}
		if note := p.text("#token-role-note"); note != "Your role (viewer) may not redeem tokens." {
			t.Errorf("the token page says %q", note)
		}
		// The viewer's live view: every action disabled, the audit shown.
		p.do("the live view", chromedp.Navigate(activityPage(id)))
		p.waitFor("the open activity", `document.querySelector('#a-state .badge')?.dataset.state === 'open' && document.querySelector('#role-note').textContent !== ''`, 10*time.Second)
		if note, want := p.text("#role-note"), "Your role (viewer) may not close, duplicate or change the stock."; note != want {
			t.Errorf("the viewer's note says %q, want %q", note, want)
		}
		if enabled := eval[string](p, `['edit', 'approve', 'refuse', 'open', 'close', 'stock'].filter(a => !document.querySelector('#action-' + a).disabled).join(' ')`); enabled != "" {
			t.Errorf("a viewer may use %q", enabled)
		}
		p.waitFor("the open in the audit section", `document.querySelector('#audit-rows tr')?.dataset.action === 'open'`, 10*time.Second)
	})
	ok = ok && t.Run("TooManyFailedSignIns", func(t *testing.T) {
		p.t = t
		p.signOut()
		// The browser and the test share the address 127.0.0.1: past its
		// failures, even a right token is refused for a while.
		for i := range 10 {
			if code := staffCall(t, app, fmt.Sprintf("wrong-%d", i), "GET", "/api/v1/admin/me", ""); code != http.StatusUnauthorized {
				t.Fatalf("failed sign-in %d: %d, want 401", i, code)
			}
		}
		p.typeInto("#token", editor.Token)
		p.click("#signin-submit")
		p.waitFor("the limit is told", `document.querySelector('#signin-error')?.textContent.includes('Too many failed sign-ins')`, 10*time.Second)
		if n := eval[int](p, `sessionStorage.length`); n != 0 {
			t.Errorf("sessionStorage holds %d items after a refused sign-in", n)
		}
	})
	_ = ok

	p.t = t
	p.checkNoProblems()
}
