package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"seckill/activity/httpapi"
)

// The browser test of the console is cmd/seckill.TestConsole; these check
// how the server serves it.

func TestConsoleServed(t *testing.T) {
	srv := httpapi.New(nil, httpapi.Config{})
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}

	t.Run("RedirectsToTheSlash", func(t *testing.T) {
		rec := get("/console")
		if rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/console/" {
			t.Fatalf("GET /console: %d, Location %q; want 301 to /console/", rec.Code, rec.Header().Get("Location"))
		}
	})

	tests := []struct {
		path, contentType, contains string
	}{
		{"/console/", "text/html", `<script type="module" src="console.js">`},
		{"/console/console.js", "text/javascript", "/api/v1/admin/activities"},
		{"/console/console.css", "text/css", "@media"},
		{"/console/favicon.svg", "image/svg+xml", "<svg"},
	}
	for _, tt := range tests {
		t.Run("Serves"+tt.path, func(t *testing.T) {
			rec := get(tt.path)
			if rec.Code != http.StatusOK {
				t.Fatalf("GET %s: %d, want 200", tt.path, rec.Code)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, tt.contentType) {
				t.Errorf("GET %s: Content-Type %q, want %s", tt.path, ct, tt.contentType)
			}
			if !strings.Contains(rec.Body.String(), tt.contains) {
				t.Errorf("GET %s: the body lacks %q", tt.path, tt.contains)
			}
			csp := rec.Header().Get("Content-Security-Policy")
			if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
				t.Errorf("GET %s: Content-Security-Policy %q does not keep the page to its own origin", tt.path, csp)
			}
			if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("GET %s: no X-Content-Type-Options: nosniff", tt.path)
			}
		})
	}

	t.Run("UnknownFileIs404", func(t *testing.T) {
		if rec := get("/console/nope.js"); rec.Code != http.StatusNotFound {
			t.Fatalf("GET /console/nope.js: %d, want 404", rec.Code)
		}
	})

	t.Run("NoTokenNeededForTheFiles", func(t *testing.T) {
		// The page asks for the token; it must load without one.
		if rec := get("/console/"); rec.Code != http.StatusOK {
			t.Fatalf("GET /console/ without a token: %d, want 200", rec.Code)
		}
	})
}

// remote finds a reference to another origin in HTML, CSS or JavaScript:
// an src or href, a CSS url() or @import, a JS import or fetch.
var remote = regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?\s*(https?:)?//|url\(\s*["']?\s*(https?:)?//|@import|import[^;]*from\s*["'](https?:)?//|fetch\(\s*["'](https?:)?//`)

// TestConsoleWorksOffline fails when a file of the console loads something
// from another origin (a CDN font or script): the console must work without
// the network.
func TestConsoleWorksOffline(t *testing.T) {
	files, err := filepath.Glob("console/static/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no console files found (%v)", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := remote.Find(b); m != nil {
			t.Errorf("%s refers to another origin: %q", f, m)
		}
	}
}
