package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"seckill/activity/httpapi"
	"seckill/internal/testenv"
)

func TestOperations(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	up := []httpapi.Check{
		{Name: "redis", Ping: func(ctx context.Context) error { return env.Redis.Ping(ctx).Err() }},
		{Name: "mysql", Ping: func(ctx context.Context) error { return env.DB.PingContext(ctx) }},
	}
	serve := func(checks ...httpapi.Check) *api {
		return &api{env: env, h: httpapi.New(env.Svc, httpapi.Config{AdminToken: adminToken, Checks: checks, Log: testenv.Logger(t)})}
	}

	t.Run("HealthzIsOK", func(t *testing.T) {
		decode[map[string]any](t, serve().call(t, "GET", "/healthz", ""), http.StatusOK)
	})

	t.Run("ReadyzIsOKWhenChecksPass", func(t *testing.T) {
		decode[map[string]any](t, serve(up...).call(t, "GET", "/readyz", ""), http.StatusOK)
	})

	t.Run("ReadyzNamesFailingCheck", func(t *testing.T) {
		down := httpapi.Check{Name: "kafka", Ping: func(context.Context) error { return errors.New("connection refused") }}
		r := serve(append(up, down)...).call(t, "GET", "/readyz", "")
		wantError(t, r, http.StatusServiceUnavailable, "unavailable", "kafka")
		if bytes.Contains(r.body, []byte("redis")) || bytes.Contains(r.body, []byte("mysql")) {
			t.Errorf("readyz names checks that pass: %s", r.body)
		}
	})

	t.Run("MetricsCountJoins", func(t *testing.T) {
		s := serve()
		act := s.inState(t, "open", 1, 1)
		decode[tokenJSON](t, s.join(t, act.ID, "m-1"), http.StatusOK)
		wantError(t, s.join(t, act.ID, "m-2"), http.StatusConflict, "sold_out", "")
		r := s.call(t, "GET", "/metrics", "")
		if r.status != http.StatusOK {
			t.Fatalf("metrics: %s", r)
		}
		for _, want := range []string{
			`seckill_joins_total{outcome="ok"} 1`,
			`seckill_joins_total{outcome="sold_out"} 1`,
			`seckill_join_duration_seconds_count 2`,
		} {
			if !bytes.Contains(r.body, []byte(want)) {
				t.Errorf("metrics have no %q:\n%s", want, r.body)
			}
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("metrics Content-Type %q, want text/plain", ct)
		}
	})

	t.Run("ReadyzAnswersPromptlyWhenACheckHangs", func(t *testing.T) {
		hang := httpapi.Check{Name: "slow", Ping: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }}
		done := make(chan reply, 1)
		go func() { done <- serve(hang).call(t, "GET", "/readyz", "") }()
		select {
		case r := <-done:
			wantError(t, r, http.StatusServiceUnavailable, "unavailable", "slow")
		case <-time.After(10 * time.Second):
			t.Fatal("readyz did not answer within 10s while a check hung")
		}
	})
}
