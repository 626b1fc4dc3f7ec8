package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"seckill/internal/testenv"
)

// testConfig is the default Config on the test Redis, with a key prefix of
// the test's own, a fresh test database and an embedded Kafka broker with a
// data directory of the test's own, serving on a free port. Apps started
// twice from it share the database, the keys and the broker's data.
func testConfig(t *testing.T) Config {
	t.Helper()
	cfg, err := LoadConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatalf("default config: %v", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "sktestapp" + hex.EncodeToString(b)
	t.Cleanup(func() {
		rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr()})
		defer rdb.Close()
		testenv.DeletePrefix(rdb, prefix)
	})
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.RedisAddrs = []string{testenv.RedisAddr()}
	cfg.RedisPrefix = prefix
	cfg.MySQLDSN = testenv.DatabaseDSN(t)
	cfg.KafkaBrokers = nil
	cfg.KafkaDataDir = t.TempDir()
	cfg.AdminToken = "app-test-admin-token"
	cfg.LogLevel = "warn"
	return cfg
}

// stopped holds the Apps a test has shut down itself, so that the cleanup
// of startApp does not shut them down again.
var stopped sync.Map

// startApp starts an App on cfg and shuts it down at the end of the test
// unless the test did with shutdown.
func startApp(t *testing.T, cfg Config) *App {
	t.Helper()
	return startAppWith(t, cfg, testenv.Logger(t))
}

// startAppWith is startApp with a logger of the caller's.
func startAppWith(t *testing.T, cfg Config, log *slog.Logger) *App {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	app, err := NewApp(ctx, cfg, log)
	if err != nil {
		t.Fatalf("NewApp: %v", err)
	}
	if err := app.Start(); err != nil {
		app.Close()
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if _, done := stopped.LoadAndDelete(app); done {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := app.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return app
}

// shutdown shuts app down and fails the test unless Shutdown returns nil
// within 10 s.
func shutdown(t *testing.T, app *App) {
	t.Helper()
	stopped.Store(app, true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- app.Shutdown(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Shutdown did not return within 15s")
	}
}

// send makes one request to app and decodes a JSON answer into out.
func send(t *testing.T, app *App, method, path, body string, out any) int {
	t.Helper()
	code, answer := adminCall(t, app, method, path, body)
	if out != nil {
		if err := json.Unmarshal([]byte(answer), out); err != nil {
			t.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
	return code
}

// adminCall makes one request to app with the admin token and returns its
// status and body.
func adminCall(t *testing.T, app *App, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, app.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+app.AdminToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestAppStartRestartShutdown(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	app := startApp(t, cfg)

	if !strings.HasPrefix(app.URL(), "http://127.0.0.1:") || strings.HasSuffix(app.URL(), ":0") {
		t.Fatalf("URL %q, want the port actually bound", app.URL())
	}
	if code := send(t, app, "GET", "/healthz", "", nil); code != http.StatusOK {
		t.Fatalf("healthz %d, want 200", code)
	}
	if code := send(t, app, "GET", "/readyz", "", nil); code != http.StatusOK {
		t.Fatalf("readyz %d, want 200", code)
	}

	// A token handed out before a restart is still valid after it.
	now := time.Now().UTC()
	var act struct {
		ID int64 `json:"id"`
	}
	body := fmt.Sprintf(`{"name":"restart","stock":2,"beginAt":%q,"endAt":%q}`,
		now.Add(-time.Minute).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	if code := send(t, app, "POST", "/api/v1/admin/activities", body, &act); code != http.StatusCreated {
		t.Fatalf("create %d", code)
	}
	for _, action := range []string{"approve", "open"} {
		if code := send(t, app, "POST", fmt.Sprintf("/api/v1/admin/activities/%d/%s", act.ID, action), "", nil); code != http.StatusOK {
			t.Fatalf("%s %d", action, code)
		}
	}
	var tok struct {
		Token string `json:"token"`
		Slot  int64  `json:"slot"`
	}
	if code := send(t, app, "POST", fmt.Sprintf("/api/v1/activities/%d/join", act.ID), `{"userId":"before-restart"}`, &tok); code != http.StatusOK {
		t.Fatalf("join %d", code)
	}

	t.Run("ShutdownReturnsNil", func(t *testing.T) {
		shutdown(t, app)
		if resp, err := http.Get(app.URL() + "/healthz"); err == nil {
			resp.Body.Close()
			t.Fatal("the server still answers after Shutdown")
		}
	})

	// main and a test's cleanup may both shut an App down.
	t.Run("SecondShutdownReturns", func(t *testing.T) {
		done := make(chan error, 1)
		go func() { done <- app.Shutdown(context.Background()) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("a second Shutdown blocks (app.go: it receives again from the served channel, which is empty)")
		}
	})

	t.Run("RestartOnSameDatabase", func(t *testing.T) {
		again := startApp(t, cfg)
		if code := send(t, again, "GET", "/healthz", "", nil); code != http.StatusOK {
			t.Fatalf("healthz after restart %d, want 200", code)
		}
		var got struct {
			Token string `json:"token"`
			Slot  int64  `json:"slot"`
		}
		if code := send(t, again, "GET", "/api/v1/tokens/"+tok.Token, "", &got); code != http.StatusOK || got != tok {
			t.Fatalf("token after restart: %d %+v, want 200 %+v", code, got, tok)
		}
		var left struct {
			Remaining int64 `json:"remaining"`
		}
		if code := send(t, again, "GET", fmt.Sprintf("/api/v1/activities/%d", act.ID), "", &left); code != http.StatusOK || left.Remaining != 1 {
			t.Fatalf("after restart: %d, remaining %d; want 200 and 1", code, left.Remaining)
		}
		shutdown(t, again)
	})
}

func TestAppGeneratesAdminToken(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.AdminToken = ""
	app := startApp(t, cfg)
	if len(app.AdminToken()) < 32 {
		t.Fatalf("generated admin token %q is too short", app.AdminToken())
	}
	if code := send(t, app, "GET", "/api/v1/admin/activities", "", nil); code != http.StatusOK {
		t.Fatalf("admin list with the generated token: %d, want 200", code)
	}
	var sb strings.Builder
	app.Announce(&sb)
	if !strings.Contains(sb.String(), app.AdminToken()) || !strings.Contains(sb.String(), app.URL()) {
		t.Fatalf("Announce does not print the URL and the generated token:\n%s", sb.String())
	}
	if !strings.Contains(sb.String(), app.URL()+"/console/") {
		t.Errorf("Announce does not print the web console's URL:\n%s", sb.String())
	}
}

func TestAppFailsOnMissingDependency(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*Config)
		want   []string // one of them must appear, case-insensitive
	}{
		{"RedisDown", func(c *Config) { c.RedisAddrs = []string{"127.0.0.1:1"} }, []string{"redis"}},
		{"MySQLDown", func(c *Config) { c.MySQLDSN = "root@tcp(127.0.0.1:1)/seckill_never?parseTime=true" }, []string{"mysql"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t)
			tt.change(&cfg)
			done := make(chan error, 1)
			go func() {
				app, err := NewApp(context.Background(), cfg, testenv.Logger(t))
				if err == nil {
					app.Close()
				}
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("NewApp did not fail within 10s")
			}
			if err == nil {
				t.Fatal("NewApp succeeded")
			}
			msg := strings.ToLower(err.Error())
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if !strings.Contains(msg, "127.0.0.1:1") {
				t.Errorf("error %q does not name the address", err)
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("error %q does not wrap its cause", err)
			}
			if strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "goroutine ") {
				t.Errorf("error %q is not one line", err)
			}
		})
	}
}

func TestAppStartFailsOnTakenAddress(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig(t)
	cfg.HTTPAddr = ln.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	app, err := NewApp(ctx, cfg, testenv.Logger(t))
	if err != nil {
		t.Fatalf("NewApp: %v", err)
	}
	defer app.Close()
	err = app.Start()
	if err == nil {
		t.Fatalf("Start on %s, which is taken, succeeded", cfg.HTTPAddr)
	}
	if !strings.Contains(err.Error(), cfg.HTTPAddr) {
		t.Fatalf("error %q does not name the address %s", err, cfg.HTTPAddr)
	}
}
