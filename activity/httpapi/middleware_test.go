package httpapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"seckill/activity"
	"seckill/activity/httpapi"
	"seckill/internal/testenv"
)

func TestRateLimits(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	a := env.OpenActivity(t, 1000, 1000)
	path := fmt.Sprintf("/api/v1/activities/%d/join", a.ID)
	join := func(h http.Handler, user, ip string) int {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(`{"userId":"`+user+`"}`))
		req.RemoteAddr = ip + ":40000"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code == http.StatusTooManyRequests && !strings.Contains(w.Body.String(), `"code":"rate_limited"`) {
			t.Fatalf("429 without the rate_limited error: %s", w.Body)
		}
		return w.Code
	}
	t.Run("PerUser", func(t *testing.T) {
		h := httpapi.New(env.Svc, httpapi.Config{AdminToken: "x", PerUser: httpapi.Limit{Rate: 0.001, Burst: 3}})
		before, _, _ := env.Store.Counters(t.Context(), a.ID)
		codes := map[int]int{}
		for range 10 {
			codes[join(h, "eager", "10.0.0.1")]++
		}
		if codes[http.StatusOK] != 3 || codes[http.StatusTooManyRequests] != 7 {
			t.Fatalf("answers %v, want 3 joins and 7 rate limited", codes)
		}
		after, _, _ := env.Store.Counters(t.Context(), a.ID)
		if after.Claimed-before.Claimed != 3 {
			t.Fatalf("%d slots taken, want 3: a rate-limited join must take nothing", after.Claimed-before.Claimed)
		}
		if got := join(h, "other", "10.0.0.1"); got != http.StatusOK {
			t.Fatalf("another user: %d, want 200", got)
		}
	})
	t.Run("PerIP", func(t *testing.T) {
		h := httpapi.New(env.Svc, httpapi.Config{AdminToken: "x", PerIP: httpapi.Limit{Rate: 0.001, Burst: 2}})
		codes := map[int]int{}
		for i := range 5 {
			codes[join(h, fmt.Sprintf("ip-user-%d", i), "10.0.0.2")]++
		}
		if codes[http.StatusOK] != 2 || codes[http.StatusTooManyRequests] != 3 {
			t.Fatalf("answers %v, want 2 joins and 3 rate limited", codes)
		}
		if got := join(h, "ip-user-x", "10.0.0.3"); got != http.StatusOK {
			t.Fatalf("another address: %d, want 200", got)
		}
	})
	t.Run("Off", func(t *testing.T) {
		h := httpapi.New(env.Svc, httpapi.Config{AdminToken: "x"})
		for i := range 20 {
			if got := join(h, fmt.Sprintf("free-%d", i), "10.0.0.4"); got != http.StatusOK {
				t.Fatalf("join %d without limits: %d", i, got)
			}
		}
	})
}

func TestRequestID(t *testing.T) {
	a := newAPI(t)
	t.Run("Echoed", func(t *testing.T) {
		r := a.call(t, "GET", "/healthz", "", "X-Request-ID", "abc-123")
		if got := r.header.Get("X-Request-ID"); got != "abc-123" {
			t.Fatalf("X-Request-ID %q, want abc-123", got)
		}
	})
	t.Run("GeneratedWhenMissingOrInsane", func(t *testing.T) {
		for _, sent := range []string{"", strings.Repeat("x", 65), "bad id"} {
			r := a.call(t, "GET", "/healthz", "", "X-Request-ID", sent)
			if got := r.header.Get("X-Request-ID"); len(got) != 16 || got == sent {
				t.Fatalf("sent %q, got X-Request-ID %q; want a generated one", sent, got)
			}
		}
	})
}

func TestCORS(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	preflight := func(h http.Handler, origin string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodOptions, "/api/v1/admin/activities", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	t.Run("OffByDefault", func(t *testing.T) {
		w := preflight(httpapi.New(env.Svc, httpapi.Config{AdminToken: "x"}), "https://console.example")
		if got := w.Header().Get("Access-Control-Allow-Origin"); got != "" {
			t.Fatalf("Access-Control-Allow-Origin %q without configuration", got)
		}
	})
	t.Run("ConfiguredOrigin", func(t *testing.T) {
		h := httpapi.New(env.Svc, httpapi.Config{AdminToken: "x", CORSOrigins: []string{"https://console.example"}})
		w := preflight(h, "https://console.example")
		if w.Code != http.StatusNoContent || w.Header().Get("Access-Control-Allow-Origin") != "https://console.example" {
			t.Fatalf("preflight: %d %v", w.Code, w.Header())
		}
		if got := preflight(h, "https://evil.example").Header().Get("Access-Control-Allow-Origin"); got != "" {
			t.Fatalf("another origin allowed: %q", got)
		}
	})
}

// TestRecover: a handler that panics is answered 500 with the error JSON,
// logged once with its request ID and without a stack dump.
func TestRecover(t *testing.T) {
	a, log := newFakeAPI(t, &fakeService{joinPanic: "boom"}, httpapi.Config{})
	r := a.call(t, "POST", "/api/v1/activities/7/join", `{"userId":"u-1"}`, "X-Request-ID", "req-42")
	wantError(t, r, http.StatusInternalServerError, "internal", "")
	if strings.Contains(string(r.body), "boom") {
		t.Errorf("the answer shows the panic: %s", r.body)
	}
	l := log.String()
	if strings.Count(l, "handler panic") != 1 || !strings.Contains(l, "requestId=req-42") || !strings.Contains(l, "boom") {
		t.Errorf("log %q, want the panic logged once with its request ID", l)
	}
	if strings.Contains(l, "goroutine ") {
		t.Errorf("the log holds a stack dump: %s", l)
	}
	// The Server still serves.
	decode[map[string]any](t, a.call(t, "GET", "/healthz", ""), http.StatusOK)
}

// TestAdminTokenComesFirst: without the admin token an admin request is
// answered 401 before anything else is looked at, and the service is never
// asked.
func TestAdminTokenComesFirst(t *testing.T) {
	fake := &fakeService{}
	a, _ := newFakeAPI(t, fake, httpapi.Config{})
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/api/v1/admin/activities", `{"name":"x"}`},
		{"POST", "/api/v1/admin/activities", `not even JSON`},
		{"GET", "/api/v1/admin/activities?limit=0", ""},
		{"GET", "/api/v1/admin/activities/7", ""},
		{"PATCH", "/api/v1/admin/activities/abc", `{"name":"x"}`},
		{"POST", "/api/v1/admin/activities/7/open", ""},
	} {
		wantError(t, a.call(t, c.method, c.path, c.body, "Authorization", "Bearer wrong"), http.StatusUnauthorized, "unauthorized", "")
	}
	if n := fake.calls(); n != 0 {
		t.Fatalf("the service was asked %d times without the admin token", n)
	}
}

// TestPerUserLimitForgetsMissingActivities: a join of an activity that does
// not exist leaves no bucket behind, so such joins are never rate limited,
// while a user of an activity that exists is.
func TestPerUserLimitForgetsMissingActivities(t *testing.T) {
	limit := httpapi.Config{PerUser: httpapi.Limit{Rate: 0.001, Burst: 1}}
	t.Run("NotFoundIsForgotten", func(t *testing.T) {
		fake := &fakeService{joinErr: activity.ErrNotFound}
		a, _ := newFakeAPI(t, fake, limit)
		for range 3 {
			wantError(t, a.join(t, 7, "u-1"), http.StatusNotFound, "not_found", "")
		}
		if n := fake.calls(); n != 3 {
			t.Fatalf("the service was asked %d joins, want 3", n)
		}
	})
	t.Run("OthersAreLimited", func(t *testing.T) {
		fake := &fakeService{joinErr: activity.ErrSoldOut}
		a, _ := newFakeAPI(t, fake, limit)
		wantError(t, a.join(t, 7, "u-1"), http.StatusConflict, "sold_out", "")
		wantError(t, a.join(t, 7, "u-1"), http.StatusTooManyRequests, "rate_limited", "")
		if n := fake.calls(); n != 1 {
			t.Fatalf("the service was asked %d joins, want 1", n)
		}
	})
}
