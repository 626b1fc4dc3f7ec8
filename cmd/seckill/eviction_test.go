package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"seckill/internal/testenv"
)

// serverEnv is the environment of a server on the private Redis addr, a
// fresh test database and an embedded broker of the test's own.
func serverEnv(t *testing.T, redisAddr string) map[string]string {
	return map[string]string{
		"SECKILL_HTTP_ADDR":      "127.0.0.1:0",
		"SECKILL_REDIS_ADDR":     redisAddr,
		"SECKILL_MYSQL_DSN":      testenv.DatabaseDSN(t),
		"SECKILL_KAFKA_DATA_DIR": t.TempDir(),
		"SECKILL_ADMIN_TOKEN":    "eviction-test-token",
		"SECKILL_LOG_LEVEL":      "warn",
	}
}

// An evicting maxmemory-policy stops the start with one line naming the
// server, the policy and the way out, exit 1.
func TestEvictionRefusesToStart(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{"allkeys-lru", "volatile-lru"} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			srv := testenv.StartRedis(t, "--maxmemory-policy", policy)
			code, stdout, stderr := runCLI(t, serverEnv(t, srv.Addr()))
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			oneLineError(t, stderr, "seckill: ", "redis at "+srv.Addr(), "maxmemory-policy "+policy,
				"noeviction", "SECKILL_REDIS_ALLOW_EVICTION")
		})
	}
}

// With SECKILL_REDIS_ALLOW_EVICTION the server starts on an evicting Redis,
// warns once, is ready, and shuts down cleanly on SIGTERM.
func TestEvictionOverrideStarts(t *testing.T) {
	srv := testenv.StartRedis(t, "--maxmemory-policy", "allkeys-lru")
	m := serverEnv(t, srv.Addr())
	m["SECKILL_REDIS_ALLOW_EVICTION"] = "true"
	var stdout, stderr testenv.Buffer
	done := make(chan int, 1)
	go func() { done <- run(nil, env(m), &stdout, &stderr) }()

	serving := regexp.MustCompile(`seckill is serving on (http://\S+)`)
	var url string
	eventually(t, 30*time.Second, "server serving", func() bool {
		select {
		case code := <-done:
			t.Fatalf("server ended with exit %d before serving; stderr:\n%s", code, stderr.String())
		default:
		}
		if m := serving.FindStringSubmatch(stdout.String()); m != nil {
			url = m[1]
		}
		return url != ""
	})
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("readyz %d with eviction allowed, want 200", resp.StatusCode)
	}
	if got := stderr.String(); strings.Count(got, "maxmemory-policy allkeys-lru") != 1 ||
		!strings.Contains(got, "starting anyway because SECKILL_REDIS_ALLOW_EVICTION is set") {
		t.Errorf("stderr does not warn once about the policy:\n%s", got)
	}

	// serve stops on SIGTERM, which its signal.NotifyContext catches.
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after SIGTERM, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop within 30s of SIGTERM")
	}
}

// startAppLogged starts an App as startApp does, logging at info into the
// returned buffer.
func startAppLogged(t *testing.T, cfg Config) (*App, *testenv.Buffer) {
	t.Helper()
	var logs testenv.Buffer
	app := startAppWith(t, cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	return app, &logs
}

// readyz returns the status and error message of GET /readyz.
func readyz(t *testing.T, app *App) (int, string) {
	t.Helper()
	var body struct {
		Error struct{ Message string } `json:"error"`
	}
	code := send(t, app, "GET", "/readyz", "", &body)
	return code, body.Error.Message
}

// A maxmemory-policy changed while the server runs makes /readyz answer 503
// naming the eviction policy, logged once, until it is noeviction again.
func TestEvictionPolicyChangedAtRunTime(t *testing.T) {
	t.Parallel()
	for _, allow := range []bool{false, true} {
		name := "Refused"
		if allow {
			name = "Allowed"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := testenv.StartRedis(t)
			cfg := testConfig(t)
			cfg.RedisAddrs = []string{srv.Addr()}
			cfg.RedisAllowEviction = allow
			cfg.evictionCheckEvery = 50 * time.Millisecond
			app, logs := startAppLogged(t, cfg)
			if code, msg := readyz(t, app); code != http.StatusOK {
				t.Fatalf("readyz %d %q at start on noeviction, want 200", code, msg)
			}

			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
			defer rdb.Close()
			ctx := context.Background()
			if err := rdb.ConfigSet(ctx, "maxmemory-policy", "allkeys-lru").Err(); err != nil {
				t.Fatal(err)
			}
			seen := "redis may now evict"
			eventually(t, 10*time.Second, "the change logged", func() bool { return strings.Contains(logs.String(), seen) })
			time.Sleep(10 * cfg.evictionCheckEvery) // more checks see the same policy
			if n := strings.Count(logs.String(), seen); n != 1 {
				t.Errorf("the change was logged %d times, want once:\n%s", n, logs.String())
			}
			code, msg := readyz(t, app)
			if allow {
				if code != http.StatusOK || !strings.Contains(logs.String(), "serving on because SECKILL_REDIS_ALLOW_EVICTION is set") {
					t.Errorf("eviction allowed: readyz %d %q, want 200 and a warning:\n%s", code, msg, logs.String())
				}
			} else {
				if code != http.StatusServiceUnavailable || !strings.Contains(msg, "redis eviction policy") {
					t.Errorf("readyz %d %q, want 503 naming the redis eviction policy", code, msg)
				}
				if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "allkeys-lru") {
					t.Errorf("the change is not logged as an error naming the policy:\n%s", logs.String())
				}
			}

			if err := rdb.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "ready again on noeviction", func() bool {
				code, _ := readyz(t, app)
				return code == http.StatusOK && strings.Contains(logs.String(), "noeviction again")
			})
		})
	}
}
