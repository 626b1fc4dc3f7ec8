package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The accessibility scan of the console uses axe-core, installed at test
// time from npm by scripts/services.sh (never kept in the repository):
// SECKILL_AXE_JS names its axe.min.js, by default the one services.sh
// installs under the user's cache directory.

var (
	axeOnce   sync.Once
	axeSource string
	axePath   string
	axeErr    error
)

// axeFile is where axe.min.js is looked for.
func axeFile() string {
	if p := os.Getenv("SECKILL_AXE_JS"); p != "" {
		return p
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "seckill", "axe", "node_modules", "axe-core", "axe.min.js")
}

// axeScript returns the text of axe.min.js, or "" when it is missing
// outside CI (the scans are then skipped, saying so once); in CI a missing
// axe-core fails the test.
func axeScript(t *testing.T) string {
	t.Helper()
	axeOnce.Do(func() {
		axePath = axeFile()
		var b []byte
		b, axeErr = os.ReadFile(axePath)
		axeSource = string(b)
	})
	if axeErr != nil {
		msg := fmt.Sprintf("no axe-core at %s (%v): install it with `npm install --no-save --prefix %s axe-core@4.14.1` "+
			"or run scripts/services.sh, or set SECKILL_AXE_JS", axePath, axeErr,
			strings.TrimSuffix(axePath, "/node_modules/axe-core/axe.min.js"))
		if os.Getenv("CI") != "" {
			t.Fatal(msg + "; CI must run the accessibility scan")
		}
		t.Log(msg + ": the accessibility scans are skipped")
		return ""
	}
	return axeSource
}

// axeViolation is one failed axe rule, with the elements that fail it.
type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// accessible scans the page as it is with axe-core and fails on every
// violation of impact serious or critical, naming it and its elements.
func (p *browserPage) accessible(where string) {
	p.t.Helper()
	src := axeScript(p.t)
	if src == "" {
		return
	}
	// Runtime.evaluate from the test is not subject to the page's
	// Content-Security-Policy, which allows no inline script.
	if !eval[bool](p, `typeof window.axe === 'object'`) {
		eval[chromedp.Void](p, src+"\n;undefined")
	}
	expr := `axe.run(document, {resultTypes: ['violations']}).then(r => JSON.stringify({passes: r.passes.length,
		violations: r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
		.map(v => ({id: v.id, impact: v.impact, help: v.help,
			nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' — ' + (n.failureSummary || '').replace(/\s+/g, ' '))}))}))`
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("axe-core on %s: %v", where, err)
	}
	var res struct {
		Passes     int
		Violations []axeViolation
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		p.t.Fatalf("axe-core on %s: %v (%s)", where, err, out)
	}
	if res.Passes == 0 {
		p.t.Fatalf("axe-core on %s checked nothing", where)
	}
	for _, v := range res.Violations {
		p.t.Errorf("accessibility, %s: %s (%s): %s\n\t%s", where, v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "\n\t"))
	}
}
