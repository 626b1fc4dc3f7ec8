package main

import (
	"bytes"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/jmoiron/sqlx"

	"seckill/activity/mysql"
	"seckill/internal/testenv"
)

// runCLI runs the command line with the environment m and returns the exit
// code, stdout and stderr.
func runCLI(t *testing.T, m map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, env(m), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// oneLineError checks that stderr is exactly one line and holds each of want.
func oneLineError(t *testing.T, stderr string, want ...string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
		t.Fatalf("stderr is not one line:\n%s", stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr %q does not mention %q", stderr, w)
		}
	}
}

func TestCLIVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}, {"migrate", "-version"}, {"-redis-db", "3", "--version"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, stdout, stderr := runCLI(t, nil, args...)
			if code != 0 || stdout != "seckill "+version+"\n" || stderr != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 0, %q, nothing", code, stdout, stderr, "seckill "+version+"\n")
			}
		})
	}
}

// brokenPipe is a standard output whose reader has gone.
type brokenPipe struct{}

func (brokenPipe) Write([]byte) (int, error) { return 0, syscall.EPIPE }

// A command whose output is lost does not say it succeeded.
func TestCLIOutputLost(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"-version"}, env(nil), brokenPipe{}, &stderr); code != 1 {
		t.Errorf("exit %d with standard output gone, want 1", code)
	}
	oneLineError(t, stderr.String(), "seckill: ", "standard output", syscall.EPIPE.Error())
	// What fails on stderr has nowhere to go: the exit code says it.
	if code := run([]string{"-bogus"}, env(nil), io.Discard, brokenPipe{}); code != 2 {
		t.Errorf("exit %d for a bad flag with stderr gone, want 2", code)
	}
}

func TestCLIHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"migrate", "-h"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, _, stderr := runCLI(t, nil, args...)
			if code != 0 {
				t.Fatalf("exit %d, want 0", code)
			}
			for _, w := range []string{"-mysql-dsn", "SECKILL_MYSQL_DSN", "seckill migrate", "seckill healthcheck", "-version"} {
				if !strings.Contains(stderr, w) {
					t.Errorf("help does not mention %q:\n%s", w, stderr)
				}
			}
		})
	}
}

func TestCLIBadCommandLine(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"UnknownCommand", []string{"serv"}, `unknown command "serv"`},
		{"UnknownCommandAfterFlags", []string{"-redis-db", "1", "migrat"}, `unknown command "migrat"`},
		{"UnknownFlag", []string{"-bogus"}, "-bogus"},
		{"UnknownFlagOfCommand", []string{"migrate", "--bogus", "x"}, "-bogus"},
		{"BadValue", []string{"-redis-db", "x"}, "SECKILL_REDIS_DB"},
		{"MissingValue", []string{"-http-addr"}, "-http-addr"},
		{"ExtraArgument", []string{"migrate", "now"}, `"now"`},
		{"VersionNotABoolean", []string{"-version=maybe"}, "-version"},
		{"VersionNotABooleanBeforeCommand", []string{"-version=2", "migrate"}, "-version"},
		{"MinInsyncReplicasOverReplicationFactor", []string{"-kafka-replication-factor", "1", "-kafka-min-insync-replicas", "2"}, "SECKILL_KAFKA_MIN_INSYNC_REPLICAS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, nil, tt.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			oneLineError(t, stderr, "seckill: ", tt.want)
		})
	}
}

// A boolean flag before the command takes no value, so the command after it
// is the one that runs.
func TestCLICommandAfterBooleanFlag(t *testing.T) {
	for _, args := range [][]string{{"-walkthrough", "version"}, {"--redis-allow-eviction=false", "-redis-db", "3", "version"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, stdout, stderr := runCLI(t, nil, args...)
			if code != 0 || stdout != "seckill "+version+"\n" || stderr != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 0, %q, nothing", code, stdout, stderr, "seckill "+version+"\n")
			}
		})
	}
	t.Run("-walkthrough migrate", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, map[string]string{"SECKILL_MYSQL_DSN": "root@tcp(127.0.0.1:1)/seckill?timeout=1s"}, "-walkthrough", "migrate")
		if code != 1 || stdout != "" {
			t.Errorf("exit %d, stdout %q; want 1 and nothing", code, stdout)
		}
		oneLineError(t, stderr, "mysql at 127.0.0.1:1", "SECKILL_MYSQL_DSN")
	})
}

// splitCommand asks the flag set which flags take a value, as its Parse
// does, rather than guessing from their defaults.
func TestSplitCommandAsksTheFlagSet(t *testing.T) {
	own := flag.NewFlagSet("own", flag.ContinueOnError)
	own.String("mode", "false", "text whose default reads like a boolean")
	own.Bool("color", true, "a boolean on by default")
	settings := newFlagSet(env(nil), io.Discard)
	tests := []struct {
		name        string
		fs          *flag.FlagSet
		args        []string
		cmd         string
		rest        []string
		showVersion bool
	}{
		{"TextFlagWithBooleanDefault", own, []string{"-mode", "x", "migrate"}, "migrate", []string{"-mode", "x"}, false},
		{"TextFlagGivenTrue", own, []string{"-mode", "true", "healthcheck"}, "healthcheck", []string{"-mode", "true"}, false},
		{"BooleanFlagOnByDefault", own, []string{"-color", "migrate", "-mode=true"}, "migrate", []string{"-color", "-mode=true"}, false},
		{"BooleanFlagFalse", own, []string{"--color=false", "migrate"}, "migrate", []string{"--color=false"}, false},
		{"BooleanSettingBeforeCommand", settings, []string{"-walkthrough", "migrate", "-lease", "5s"}, "migrate", []string{"-walkthrough", "-lease", "5s"}, false},
		{"BooleanSettingFalseBeforeCommand", settings, []string{"-redis-allow-eviction=false", "-redis-db", "3", "healthcheck"}, "healthcheck",
			[]string{"-redis-allow-eviction=false", "-redis-db", "3"}, false},
		{"HelpBeforeCommand", settings, []string{"-h", "migrate"}, "migrate", []string{"-h"}, false},
		{"VersionAfterBooleanSetting", settings, []string{"-walkthrough", "-version"}, "", []string{"-walkthrough"}, true},
		{"VersionFalse", settings, []string{"-version=false", "migrate"}, "migrate", nil, false},
		{"UnknownFlagLeftWithTheRest", settings, []string{"-bogus", "migrate"}, "", []string{"-bogus", "migrate"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, rest, showVersion := splitCommand(tt.fs, tt.args)
			if cmd != tt.cmd || !reflect.DeepEqual(rest, tt.rest) || showVersion != tt.showVersion {
				t.Errorf("splitCommand(%q) = %q, %q, %v; want %q, %q, %v", tt.args, cmd, rest, showVersion, tt.cmd, tt.rest, tt.showVersion)
			}
		})
	}
}

func TestCLIMigrate(t *testing.T) {
	dsn := testenv.DatabaseDSN(t)
	want, err := mysql.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	// The second run finds the schema up to date and succeeds as well.
	for _, run := range []string{"Fresh", "AlreadyMigrated"} {
		t.Run(run, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, map[string]string{"SECKILL_MYSQL_DSN": dsn}, "migrate")
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			if !strings.Contains(stdout, "migrated") {
				t.Errorf("stdout %q does not say the database is migrated", stdout)
			}
			db, err := sqlx.Open("mysql", dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var n int
			if err := db.Get(&n, "SELECT COUNT(*) FROM schema_migrations"); err != nil {
				t.Fatal(err)
			}
			if n == 0 || n != len(want) {
				t.Errorf("schema_migrations holds %d rows, want %d", n, len(want))
			}
		})
	}
}

func TestCLIMigrateMySQLDown(t *testing.T) {
	code, stdout, stderr := runCLI(t, map[string]string{"SECKILL_MYSQL_DSN": "root@tcp(127.0.0.1:1)/seckill?timeout=1s"}, "migrate")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if stdout != "" {
		t.Errorf("stdout %q, want nothing", stdout)
	}
	oneLineError(t, stderr, "mysql at 127.0.0.1:1", "SECKILL_MYSQL_DSN")
}

func TestCLIHealthcheck(t *testing.T) {
	serve := func(t *testing.T, status int) string {
		t.Helper()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/healthz" {
				http.NotFound(w, r)
				return
			}
			w.WriteHeader(status)
		}))
		t.Cleanup(srv.Close)
		_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
		return ":" + port // as SECKILL_HTTP_ADDR is usually given
	}
	closed := func(t *testing.T) string {
		t.Helper()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}

	t.Run("Healthy", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, map[string]string{"SECKILL_HTTP_ADDR": serve(t, http.StatusOK)}, "healthcheck")
		if code != 0 || stderr != "" {
			t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, stderr)
		}
		if !strings.Contains(stdout, "healthy") {
			t.Errorf("stdout %q", stdout)
		}
	})
	t.Run("Unhealthy", func(t *testing.T) {
		code, _, stderr := runCLI(t, nil, "healthcheck", "-http-addr", serve(t, http.StatusServiceUnavailable))
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		oneLineError(t, stderr, "503")
	})
	t.Run("NotRunning", func(t *testing.T) {
		code, _, stderr := runCLI(t, map[string]string{"SECKILL_HTTP_ADDR": closed(t)}, "healthcheck")
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		oneLineError(t, stderr, "healthcheck", "refused")
	})
}

// TestCLIBrokerAddress: seckill broker refuses to listen on every interface
// (it would tell its clients an address they cannot reach), with one line
// and exit 2; the other commands do not care what SECKILL_BROKER_ADDR holds.
func TestCLIBrokerAddress(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:9092", ":9092", "[::]:9092"} {
		code, _, stderr := runCLI(t, nil, "broker", "-broker-addr", addr, "-kafka-data-dir", t.TempDir())
		if code != 2 {
			t.Errorf("broker -broker-addr %s: exit %d, want 2", addr, code)
		}
		oneLineError(t, stderr, "SECKILL_BROKER_ADDR", "not every interface")
	}
	if _, err := LoadConfig(nil, env(map[string]string{"SECKILL_BROKER_ADDR": "0.0.0.0:9092"}), io.Discard); err != nil {
		t.Errorf("a server with SECKILL_BROKER_ADDR=0.0.0.0:9092 in its environment: %v", err)
	}
}
