// Package testenv gives integration tests their own database on the real
// MySQL/MariaDB and their own key prefix on the real Redis, and cleans both
// up. Addresses come from SECKILL_TEST_MYSQL_DSN and SECKILL_TEST_REDIS_ADDR,
// with the local defaults.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"seckill/activity"
	"seckill/activity/mysql"
	"seckill/job"
	"seckill/stock"
)

// closeAtEnd closes c when the test ends; a failure is logged, as nothing
// of the test depends on it.
func closeAtEnd(t testing.TB, what string, c io.Closer) {
	t.Cleanup(func() { closeLogged(t, what, c) })
}

// closeLogged closes c and logs a failure.
func closeLogged(t testing.TB, what string, c io.Closer) {
	if err := c.Close(); err != nil {
		t.Logf("testenv: closing %s: %v", what, err)
	}
}

// RedisAddr is the address of the test Redis.
func RedisAddr() string {
	if v := os.Getenv("SECKILL_TEST_REDIS_ADDR"); v != "" {
		return v
	}
	return "127.0.0.1:6379"
}

// MySQLDSN is the DSN of the test server, without a database name.
func MySQLDSN() string {
	if v := os.Getenv("SECKILL_TEST_MYSQL_DSN"); v != "" {
		return v
	}
	return "root@tcp(127.0.0.1:3306)/"
}

func suffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// DatabaseDSN returns the DSN of a fresh database name, not yet created, that
// is dropped when the test ends.
func DatabaseDSN(t testing.TB) string {
	t.Helper()
	cfg, err := gomysql.ParseDSN(MySQLDSN())
	if err != nil {
		t.Fatalf("testenv: SECKILL_TEST_MYSQL_DSN: %v", err)
	}
	cfg.DBName = "seckill_test_" + suffix()
	cfg.ParseTime = true
	dsn := cfg.FormatDSN()
	t.Cleanup(func() {
		c := cfg.Clone()
		c.DBName = ""
		db, err := sqlx.Open("mysql", c.FormatDSN())
		if err != nil {
			return
		}
		defer closeLogged(t, "mysql", db)
		_, _ = db.Exec("DROP DATABASE IF EXISTS `" + cfg.DBName + "`")
	})
	return dsn
}

// MySQL returns a migrated database of the test's own.
func MySQL(t testing.TB) *sqlx.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := mysql.Open(ctx, DatabaseDSN(t))
	if err != nil {
		t.Fatalf("testenv: %v (is MariaDB running? scripts/services.sh starts it)", err)
	}
	closeAtEnd(t, "mysql", db)
	return db
}

// Redis returns a client of the test Redis and a key prefix of the test's
// own; every key under the prefix is deleted when the test ends.
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: RedisAddr(), PoolSize: 128})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("testenv: redis at %s: %v (scripts/services.sh starts it)", RedisAddr(), err)
	}
	prefix := "sktest" + suffix()
	t.Cleanup(func() {
		DeletePrefix(rdb, prefix)
		closeLogged(t, "redis", rdb)
	})
	return rdb, prefix
}

// Dump returns every key of one activity's state with its value: strings
// as they are, hashes field by field ("key field"), other types by their
// type only; locks and leases are left out (their values are random).
func Dump(t testing.TB, rdb redis.UniversalClient, k stock.Keys) map[string]string {
	t.Helper()
	ctx := context.Background()
	keys := Keys(t, rdb, strings.TrimSuffix(k.Meta, "meta")+"*")
	out := map[string]string{}
	for _, key := range keys {
		if key == k.State || key == k.Leases || strings.HasPrefix(key, k.LockPrefix) {
			continue
		}
		switch typ := rdb.Type(ctx, key).Val(); typ {
		case "string":
			out[key] = rdb.Get(ctx, key).Val()
		case "hash":
			for f, v := range rdb.HGetAll(ctx, key).Val() {
				out[key+" "+f] = v
			}
		default:
			out[key] = typ
		}
	}
	return out
}

// DeletePrefix deletes every key under prefix.
func DeletePrefix(rdb redis.UniversalClient, prefix string) {
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	for len(keys) > 0 {
		n := min(len(keys), 500)
		rdb.Del(ctx, keys[:n]...)
		keys = keys[n:]
	}
}

// Env is a wired Service on the real Redis and MySQL.
type Env struct {
	DB     *sqlx.DB
	Redis  redis.UniversalClient
	Prefix string
	Store  *stock.Store
	Repo   *mysql.Repository
	Signer *activity.Signer
	Svc    *activity.Service
	Job    *job.Reconciler
}

// Options tune New.
type Options struct {
	// Redis replaces the shared test Redis, e.g. with a ClusterClient.
	Redis redis.UniversalClient
	Lease time.Duration
	// Recorder replaces the MySQL recorder, e.g. to inject failures.
	Recorder func(*mysql.Repository) activity.Recorder
	// Slots wraps the slot store, e.g. to inject failures.
	Slots func(*stock.Store) activity.SlotStore
}

// New returns a Service on its own database and key prefix.
func New(t testing.TB, o Options) *Env {
	t.Helper()
	e := &Env{DB: MySQL(t)}
	e.Redis, e.Prefix = Redis(t)
	if o.Redis != nil {
		e.Redis = o.Redis
	}
	e.Store = stock.New(e.Redis, stock.Options{Prefix: e.Prefix, Lease: o.Lease})
	t.Cleanup(e.Store.Stop)
	e.Repo = mysql.NewRepository(e.DB)
	secret, err := mysql.TokenSecret(context.Background(), e.DB)
	if err != nil {
		t.Fatal(err)
	}
	if e.Signer, err = activity.NewSigner(secret); err != nil {
		t.Fatal(err)
	}
	var rec activity.Recorder = e.Repo
	if o.Recorder != nil {
		rec = o.Recorder(e.Repo)
	}
	var slots activity.SlotStore = e.Store
	if o.Slots != nil {
		slots = o.Slots(e.Store)
	}
	e.Svc = activity.NewService(e.Repo, slots, rec, e.Signer, Logger(t))
	e.Job = &job.Reconciler{Svc: e.Svc, Log: Logger(t)}
	return e
}

// Reconcile runs job cycles until no record is left pending, and returns
// what the cycles did.
func (e *Env) Reconcile(t testing.TB) activity.ReconcileReport {
	t.Helper()
	var total activity.ReconcileReport
	for range 50 {
		rep, err := e.Job.Cycle(context.Background())
		if err != nil {
			t.Fatalf("reconcile: %v", err)
		}
		total.Reaped += rep.Reaped
		total.Valid += rep.Valid
		total.Void += rep.Void
		total.Snapshots += rep.Snapshots
		total.Closed += rep.Closed
		total.Rebuilt += rep.Rebuilt
		if rep.Pending == 0 {
			return total
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("reconcile: records still pending after 50 cycles")
	return total
}

// Logger returns a logger that writes to the test log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// OpenActivity creates, approves and opens an activity whose window holds
// now.
func (e *Env) OpenActivity(t testing.TB, stockN, perUser int64) *activity.Activity {
	t.Helper()
	return e.OpenSharded(t, stockN, perUser, 1)
}

// OpenSharded is OpenActivity for an activity spread over the given shards.
func (e *Env) OpenSharded(t testing.TB, stockN, perUser int64, shards int) *activity.Activity {
	t.Helper()
	ctx := context.Background()
	begin, end := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	name := "test activity"
	a, err := e.Svc.Create(ctx, activity.Fields{Name: &name, Stock: &stockN, PerUserLimit: &perUser, BeginAt: &begin, EndAt: &end, Shards: &shards})
	if err != nil {
		t.Fatal(err)
	}
	for _, act := range []activity.Action{activity.ActionApprove, activity.ActionOpen} {
		if a, err = e.Svc.Transition(ctx, a.ID, act); err != nil {
			t.Fatalf("%s: %v", act, err)
		}
	}
	return a
}

// HomedOn returns n user IDs, the prefix and a number, whose home shard of
// an activity of k shards is j (activity.HomeShard).
func HomedOn(prefix string, n, j, k int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		if u := prefix + strconv.Itoa(i); activity.HomeShard(u, k) == j {
			out = append(out, u)
		}
	}
	return out
}

// DeadRedis returns a client of an address where no Redis answers.
func DeadRedis(t testing.TB) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	closeAtEnd(t, "redis", rdb)
	return rdb
}

// MySQLAt opens the database of dsn at another address (past a Proxy).
func MySQLAt(t testing.TB, dsn, addr string) *sqlx.DB {
	t.Helper()
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = addr
	db, err := sqlx.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, "mysql", db)
	return db
}
