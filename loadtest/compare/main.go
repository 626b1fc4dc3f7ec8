// Command compare is the comparison harness: in one invocation, on the same
// Redis and MariaDB, it runs every design under the same closed-loop load (N
// connections, a fixed duration each) and prints one table — tokens/s, p50,
// p99, oversold, unsold, the CPU of the answering process per token — and the
// ratios of this service to the baselines.
//
//	go run ./loadtest/compare                      # defaults: 64 connections, 10 s each, stock 1,000,000
//	go run ./loadtest/compare -d 5s -designs afg   # a quick subset
//	go run ./loadtest/compare -designs g           # the bare net/http endpoint alone
//	go run ./loadtest/compare -join -url http://127.0.0.1:8080 -token $TOKEN -stock 10000000
//	go run ./loadtest/compare -join -url http://127.0.0.1:8081,http://127.0.0.1:8082,http://127.0.0.1:8083 -token $TOKEN
//	go run ./loadtest/compare -burst -url http://127.0.0.1:8080 -token $TOKEN -rates 2000,5000 -soldout
//
// With -join first, it is the load generator alone against a service already
// running at -url: it creates and opens an activity through the admin API (or
// joins -activity, or POSTs -path), sends closed-loop load (-c connections for
// -d) and prints throughput, latency percentiles and the answers by status.
// -url may name several instances of one service, comma-separated (make
// run-cluster prints them): the activity is made through the first, and the
// requests go to each in turn.
//
// Designs: (a) MySQL conditional UPDATE, (b) SELECT … FOR UPDATE, (c)
// optimistic version column, (d) one Redis lock around the MySQL work, (e)
// the seed's INCR + SETNX with a fire-and-forget Kafka message — all in a
// baseline server this binary starts as a child process (-serve) — (f) this
// service's join endpoint (cmd/seckill, built and started as a child
// process, on a seckill broker in a process of its own) and (g) a bare
// net/http endpoint with the same JSON, the HTTP ceiling. (f) then meets
// open-loop bursts (-burst): arrivals at fixed rates, whatever the answers.
//
// Each design gets an activity of -stock (by default more than any design
// sells in the run), then a second, already sold-out activity (stock 1) for
// the sold-out measurement. After a run the harness waits for the design to
// settle and counts its records; when the run sold out, it sells what is left
// one join at a time: stock that cannot be sold then is unsold (stranded).
//
// The harness uses its own MySQL databases and Redis key prefixes and
// removes them, its children and its temporary files on exit, also on
// Ctrl-C. It exits 1 on errors, including an oversold design, a token
// answered without a record, or stranded stock in a design that must not
// strand any; a missed ratio target is reported, not an error.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"seckill/loadtest/baselines"
	"seckill/loadtest/load"
)

type config struct {
	conns           int
	duration        time.Duration
	soldOutDuration time.Duration
	stock           int64
	settle          time.Duration
	pause           time.Duration
	ownRedis        bool
	designs         string
	redisAddr       string
	mysqlDSN        string
	jsonPath        string
	serviceBin      string
	profileDir      string
	baseline        baselines.Options
	// burst is the open-loop part of (f): its Rates empty skips it.
	burst burstPlan
}

// quiet drops go-redis's internal log lines (dial retries): the harness
// reports what fails itself.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func main() {
	redis.SetLogger(quiet{})
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "-serve":
			os.Exit(serve(os.Args[2:]))
		case "-join":
			os.Exit(join(os.Args[2:]))
		case "-burst":
			os.Exit(burst(os.Args[2:]))
		}
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	var cfg config
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.IntVar(&cfg.conns, "c", 64, "connections (closed loop: one request at a time each)")
	fs.DurationVar(&cfg.duration, "d", 10*time.Second, "duration of each design's run")
	fs.DurationVar(&cfg.soldOutDuration, "soldout-d", 5*time.Second, "duration of each sold-out run (0: skip them)")
	fs.Int64Var(&cfg.stock, "stock", 1_000_000, "stock of each design's activity: by default more than any design sells in -d, so each sells for the whole run")
	fs.DurationVar(&cfg.settle, "settle", 30*time.Second, "how long to wait for a design to settle after its run")
	fs.DurationVar(&cfg.pause, "pause", 2*time.Second, "pause before each run, to let MariaDB and Redis catch up; Redis traffic in it is the background rate")
	fs.BoolVar(&cfg.ownRedis, "own-redis", false, "start a private redis-server (no persistence) for the whole run instead of using -redis: exact Redis counters on a shared machine")
	fs.StringVar(&cfg.designs, "designs", "abcdefg", "designs to run, by letter")
	fs.StringVar(&cfg.redisAddr, "redis", "127.0.0.1:6379", "Redis address")
	fs.StringVar(&cfg.mysqlDSN, "mysql", "root@tcp(127.0.0.1:3306)/", "MariaDB/MySQL DSN without a database; the harness creates and drops its own")
	fs.StringVar(&cfg.jsonPath, "json", "docs/benchmarks.json", "write the results as JSON to this file (empty: don't)")
	fs.StringVar(&cfg.serviceBin, "service-bin", "", "the seckill binary (empty: go build ./cmd/seckill)")
	fs.StringVar(&cfg.profileDir, "profile", "", "write a CPU profile of the service during (f)'s run, and its allocations after, into this directory (needs SECKILL_PPROF_ADDR support)")
	burstRates := fs.String("burst", "2000,5000,10000,20000", "open-loop bursts of (f), arrivals per second, comma-separated: each on a fresh activity of -burst-stock, then on one sold out (empty: none)")
	fs.DurationVar(&cfg.burst.Duration, "burst-d", 5*time.Second, "duration of each burst")
	fs.Int64Var(&cfg.burst.Stock, "burst-stock", 10_000, "stock of the activity of each burst")
	overload := fs.String("overload", "1,2,4", "open-loop overloads of (f) after the bursts, as multiples of the capacity (the highest -burst rate held with stock), comma-separated: each on a fresh activity of -stock (empty: none)")
	fs.IntVar(&cfg.baseline.OptimisticAttempts, "opt-attempts", 0, "tries of the optimistic design (c) (0: 20)")
	fs.DurationVar(&cfg.baseline.OptimisticBackoff, "opt-backoff", 0, "first backoff of (c) (0: 10ms)")
	fs.IntVar(&cfg.baseline.LockTries, "lock-tries", 0, "SET NX tries of the Redis lock design (d) (0: 500)")
	fs.DurationVar(&cfg.baseline.LockRetryDelay, "lock-delay", 0, "delay between tries of (d) (0: 4ms)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.conns < 1 || cfg.conns > 1024 || cfg.duration <= 0 || cfg.duration > 5*time.Minute ||
		cfg.soldOutDuration < 0 || cfg.soldOutDuration > 5*time.Minute || cfg.stock < 1 || cfg.stock > 10_000_000 {
		fmt.Fprintln(os.Stderr, "compare: -c must be in [1, 1024], -d and -soldout-d at most 5m, -stock in [1, 10,000,000]")
		return 2
	}
	if *burstRates != "" {
		for _, v := range strings.Split(*burstRates, ",") {
			r, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || r < 1 || r > load.MaxBurstRate {
				fmt.Fprintf(os.Stderr, "compare: -burst %q: want arrival rates per second in [1, %d], comma-separated\n", *burstRates, load.MaxBurstRate)
				return 2
			}
			cfg.burst.Rates = append(cfg.burst.Rates, r)
		}
	}
	var err error
	if cfg.burst.Overload, err = parseMultiples(*overload); err != nil {
		fmt.Fprintln(os.Stderr, "compare: -overload", err)
		return 2
	}
	if cfg.burst.Duration <= 0 || cfg.burst.Duration > time.Minute || cfg.burst.Stock < 1 || cfg.burst.Stock > 10_000_000 {
		fmt.Fprintln(os.Stderr, "compare: -burst-d must be in (0, 1m], -burst-stock in [1, 10,000,000]")
		return 2
	}
	cfg.burst.SoldOut = true
	cfg.burst.Pause = 2 * time.Second
	cfg.burst.Timeout = 10 * time.Second
	cfg.burst.MaxOutstanding = 50_000
	cfg.burst.Conns = 1024
	for _, k := range cfg.designs {
		if !strings.ContainsRune("abcdefg", k) {
			fmt.Fprintf(os.Stderr, "compare: unknown design %q in -designs (use letters a to g)\n", k)
			return 2
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	h := &harness{cfg: cfg}
	err = h.setup(ctx)
	if err == nil {
		err = h.runAll(ctx)
	}
	h.cleanup()
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "compare: interrupted; children stopped, databases and keys removed")
		return 130
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		return 1
	}
	rep := h.report()
	if err := rep.print(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		return 1
	}
	if cfg.jsonPath != "" {
		if err := rep.write(cfg.jsonPath); err != nil {
			fmt.Fprintln(os.Stderr, "compare:", err)
			return 1
		}
		fmt.Printf("\nresults written to %s\n", cfg.jsonPath)
	}
	if rep.errors() > 0 {
		fmt.Fprintf(os.Stderr, "compare: %d error(s), see above\n", rep.errors())
		return 1
	}
	return 0
}

// harness holds what one invocation set up, to remove it at the end.
type harness struct {
	cfg config
	tag string
	tmp string

	rdb      *redis.Client
	admin    *sql.DB // no database selected: creates and drops ours
	bdb      *sql.DB // the baselines' database
	mysqlCfg *gomysql.Config
	baseDB   string
	svcDB    string
	prefixes []string

	redis    *child // the private redis-server of -own-redis
	baseline *child
	baseURL  string
	svcBin   string
	// svcBuildErr is why the service could not be built.
	svcBuildErr error
	svc         *child
	// broker is seckill broker, the service's Kafka broker, in a process of
	// its own so that the service's CPU time is its own.
	broker    *child
	pprofAddr string

	machine  machine
	results  []*designResult
	problems []problem
}

func (h *harness) setup(ctx context.Context) error {
	var err error
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	h.tag = hex.EncodeToString(b)

	if h.tmp, err = os.MkdirTemp("", "cmpbench-"); err != nil {
		return err
	}
	if h.cfg.ownRedis {
		if err := h.startRedis(ctx); err != nil {
			return err
		}
	}
	h.rdb = redis.NewClient(&redis.Options{Addr: h.cfg.redisAddr, DialTimeout: 2 * time.Second})
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := h.rdb.Ping(pctx).Err(); err != nil {
		return fmt.Errorf("redis at %s is not answering (%v): start it (redis-server, or scripts/services.sh) or pass -redis", h.cfg.redisAddr, err)
	}
	mc, err := gomysql.ParseDSN(h.cfg.mysqlDSN)
	if err != nil {
		return fmt.Errorf("bad -mysql DSN: %w", err)
	}
	if mc.Timeout == 0 {
		mc.Timeout = 3 * time.Second
	}
	mc.DBName = ""
	h.mysqlCfg = mc
	if h.admin, err = sql.Open("mysql", mc.FormatDSN()); err != nil {
		return err
	}
	if err := h.admin.PingContext(pctx); err != nil {
		return fmt.Errorf("mariadb/mysql at %s is not answering (%v): start it (scripts/services.sh) or pass -mysql", mc.Addr, err)
	}
	h.machine = h.describeMachine(ctx)

	// The baselines: their database, their server.
	h.baseDB = "cmpbench_" + h.tag
	if _, err := h.admin.ExecContext(ctx, "CREATE DATABASE `"+h.baseDB+"`"); err != nil {
		h.baseDB = ""
		return fmt.Errorf("create database: %w", err)
	}
	bc := mc.Clone()
	bc.DBName = h.baseDB
	bc.InterpolateParams = true
	if h.bdb, err = sql.Open("mysql", bc.FormatDSN()); err != nil {
		return err
	}
	h.bdb.SetMaxOpenConns(4)
	if err := baselines.Migrate(ctx, h.bdb); err != nil {
		return err
	}
	if h.needs("abcdeg") {
		if err := h.startBaselines(ctx, bc.FormatDSN()); err != nil {
			return err
		}
	}
	if h.needs("f") {
		// A service that does not build fails (f) only; the baselines
		// still run.
		if h.svcBin = h.cfg.serviceBin; h.svcBin == "" {
			fmt.Fprintln(os.Stderr, "building ./cmd/seckill …")
			h.svcBin, h.svcBuildErr = buildService(ctx, h.tmp)
		}
	}
	return ctx.Err()
}

// startRedis starts a private redis-server without persistence on a free
// port; every design then uses it.
func (h *harness) startRedis(ctx context.Context) error {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return fmt.Errorf("-own-redis: redis-server is not on PATH (%v)", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(addr)
	args := []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", h.tmp}
	if h.redis, err = startChild("redis-server", bin, args, os.Environ(), filepath.Join(h.tmp, "redis.log")); err != nil {
		return err
	}
	h.cfg.redisAddr = addr
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer func() { _ = rdb.Close() }() // used for these pings only
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Ping(ctx).Err() != nil {
		if time.Now().After(deadline) {
			return fmt.Errorf("the private redis-server did not answer within 10s:\n%s", h.redis.logTail(10))
		}
		if err := load.Sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

func (h *harness) needs(keys string) bool { return strings.ContainsAny(h.cfg.designs, keys) }

func (h *harness) startBaselines(ctx context.Context, dsn string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	prefix := "cmpbench-" + h.tag + "-base"
	h.prefixes = append(h.prefixes, prefix)
	o := h.cfg.baseline
	args := []string{"-serve", "-addr", addr, "-mysql-dsn", dsn, "-redis", h.cfg.redisAddr, "-prefix", prefix,
		"-kafka-dir", filepath.Join(h.tmp, "kafka-baselines"),
		"-opt-attempts", fmt.Sprint(o.OptimisticAttempts), "-opt-backoff", o.OptimisticBackoff.String(),
		"-lock-tries", fmt.Sprint(o.LockTries), "-lock-delay", o.LockRetryDelay.String()}
	if h.baseline, err = startChild("baseline server", self, args, os.Environ(), filepath.Join(h.tmp, "baselines.log")); err != nil {
		return err
	}
	h.baseURL = "http://" + addr
	return h.baseline.waitReady(ctx, h.baseURL+"/healthz", 30*time.Second)
}

// startService starts seckill broker, then the service on its own
// database, key prefix and that broker.
func (h *harness) startService(ctx context.Context) (*service, error) {
	brokerAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	benv := append(cleanEnv(), "SECKILL_BROKER_ADDR="+brokerAddr,
		"SECKILL_KAFKA_DATA_DIR="+filepath.Join(h.tmp, "kafka-broker"), "SECKILL_LOG_LEVEL=warn")
	if h.broker, err = startChild("seckill broker", h.svcBin, []string{"broker"}, benv, filepath.Join(h.tmp, "broker.log")); err != nil {
		return nil, err
	}
	if err := h.broker.waitListening(ctx, brokerAddr, 30*time.Second); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	h.svcDB = "cmpbench_" + h.tag + "_svc"
	sc := h.mysqlCfg.Clone()
	sc.DBName = h.svcDB
	sc.ParseTime = true
	prefix := "cmpbench-" + h.tag + "-svc"
	h.prefixes = append(h.prefixes, prefix)
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token := hex.EncodeToString(b)
	env := append(cleanEnv(),
		"SECKILL_HTTP_ADDR="+addr,
		"SECKILL_REDIS_ADDR="+h.cfg.redisAddr,
		"SECKILL_REDIS_PREFIX="+prefix,
		"SECKILL_MYSQL_DSN="+sc.FormatDSN(),
		"SECKILL_ADMIN_TOKEN="+token,
		"SECKILL_KAFKA_BROKERS="+brokerAddr,
		"SECKILL_LOG_LEVEL=warn",
	)
	if h.cfg.profileDir != "" {
		if h.pprofAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		env = append(env, "SECKILL_PPROF_ADDR="+h.pprofAddr)
	}
	if h.svc, err = startChild("service", h.svcBin, nil, env, filepath.Join(h.tmp, "service.log")); err != nil {
		return nil, err
	}
	url := "http://" + addr
	if err := h.svc.waitReady(ctx, url+"/readyz", 60*time.Second); err != nil {
		return nil, err
	}
	return &service{url: url, token: token, client: &http.Client{Timeout: 10 * time.Second}}, nil
}

func (h *harness) stopService() {
	if h.svc != nil {
		if err := h.svc.stop(20 * time.Second); err != nil {
			h.problem(true, "f", "stopping the service: %v", err)
		}
		h.svc = nil
	}
	if h.broker != nil {
		if err := h.broker.stop(10 * time.Second); err != nil {
			h.problem(true, "f", "stopping seckill broker: %v", err)
		}
		h.broker = nil
	}
}

// cleanup stops the children and removes the databases, keys and files of
// this invocation. It runs also after an interrupt, with a fresh context.
func (h *harness) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h.stopService()
	if h.baseline != nil {
		if err := h.baseline.stop(15 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "compare: stopping the baseline server:", err)
		}
	}
	if h.bdb != nil {
		_ = h.bdb.Close() // at exit: a failed close changes nothing
	}
	if h.admin != nil {
		for _, name := range []string{h.baseDB, h.svcDB} {
			if name == "" {
				continue
			}
			if _, err := h.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
				fmt.Fprintf(os.Stderr, "compare: drop database %s: %v\n", name, err)
			}
		}
		_ = h.admin.Close() // at exit, as above
	}
	if h.rdb != nil && h.redis == nil {
		for _, p := range h.prefixes {
			if err := deleteKeys(ctx, h.rdb, p+":*"); err != nil {
				fmt.Fprintf(os.Stderr, "compare: delete Redis keys %s:*: %v\n", p, err)
			}
		}
	}
	if h.rdb != nil {
		_ = h.rdb.Close() // at exit, as above
	}
	if h.redis != nil {
		if err := h.redis.stop(10 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "compare: stopping the private redis-server:", err)
		}
	}
	if h.tmp != "" {
		if err := os.RemoveAll(h.tmp); err != nil {
			fmt.Fprintln(os.Stderr, "compare: remove the temporary files:", err)
		}
	}
}

func deleteKeys(ctx context.Context, rdb *redis.Client, pattern string) error {
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 500 {
			if err := rdb.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return rdb.Unlink(ctx, batch...).Err()
	}
	return nil
}

// runAll runs the selected designs in table order. A design that fails is
// reported and the others still run; only an interrupt stops the lot.
func (h *harness) runAll(ctx context.Context) error {
	for _, key := range "abcdefg" {
		if !strings.ContainsRune(h.cfg.designs, key) {
			continue
		}
		var r *designResult
		var err error
		switch key {
		case 'f':
			r, err = h.runService(ctx)
		case 'g':
			r, err = h.runCeiling(ctx)
		default:
			r, err = h.runBaseline(ctx, baselines.Designs[key-'a'])
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			if gone := h.childrenGone(); gone != "" && !strings.Contains(err.Error(), gone) {
				err = fmt.Errorf("%w%s", err, gone)
			}
			h.problem(true, string(key), "run failed: %v", err)
			fmt.Fprintf(os.Stderr, "(%c) failed: %v\n", key, err)
			if h.baseline != nil && h.baseline.gone() != nil {
				h.problem(true, "-", "the baseline server is gone: the designs after (%c) did not run", key)
				return nil
			}
			continue
		}
		h.results = append(h.results, r)
		fmt.Fprintf(os.Stderr, "(%c) %-26s %8.0f joins/s  ok %d  sold-out %d  errors %d  p99 %v\n", key, r.Short,
			r.JoinsPerSec, r.OK, r.SoldOut, r.Errors, ms(r.P99Ms))
	}
	return nil
}

// measure pauses, then runs the load against url with Redis counters taken
// right before and right after. The Redis traffic during the pause, when
// nothing of the harness runs (only an idle server), is the background rate:
// other clients of a shared Redis, which the server-wide counters of the run
// include too.
//
// The CPU time of the design's processes (its server; the service and its
// broker for (f)), of Redis and of the whole machine is read right before
// and right after the run too.
func (h *harness) measure(ctx context.Context, key, url, users string, d time.Duration) (*measured, error) {
	quiet, err := snapRedis(ctx, h.rdb)
	if err != nil {
		return nil, fmt.Errorf("redis INFO: %w", err)
	}
	t0 := time.Now()
	if err := load.Sleep(ctx, h.cfg.pause); err != nil {
		return nil, err
	}
	before, err := snapRedis(ctx, h.rdb)
	if err != nil {
		return nil, fmt.Errorf("redis INFO: %w", err)
	}
	background := before.since(quiet)
	quietSec := time.Since(t0).Seconds()
	server, broker := h.baseline, (*child)(nil)
	if key == "f" {
		server, broker = h.svc, h.broker
	}
	cpu0 := snapCPU(server, broker, before.cpu)
	res, err := load.Run(ctx, load.Options{URLs: []string{url}, Conns: h.cfg.conns, Duration: d, UserPrefix: users})
	if err != nil {
		return nil, err
	}
	after, err := snapRedis(context.WithoutCancel(ctx), h.rdb)
	if err != nil {
		return nil, fmt.Errorf("redis INFO: %w", err)
	}
	m := &measured{res: res, redis: after.since(before), cpu: snapCPU(server, broker, after.cpu).since(cpu0)}
	m.redis.BackgroundPerSec = float64(background.RoundTrips) / quietSec
	m.redis.BackgroundScriptsPerSec = float64(background.ScriptCalls) / quietSec
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if res.Requests > 0 && res.Other["failed"] == res.Requests {
		return nil, fmt.Errorf("no request got an answer%s", h.childrenGone())
	}
	return m, nil
}

// measured is what one run saw: the answers, Redis's counters and the CPU
// time used.
type measured struct {
	res   *load.Result
	redis redisDelta
	cpu   cpuUse
}

// childrenGone says which server children exited, how, and the end of
// their logs.
func (h *harness) childrenGone() string {
	var b strings.Builder
	for _, c := range []*child{h.baseline, h.svc, h.broker, h.redis} {
		if c != nil {
			if err := c.gone(); err != nil {
				b.WriteString("; " + err.Error())
			}
		}
	}
	return b.String()
}

func (h *harness) users(key string) string { return "cmp" + h.tag + "-" + key + "-" }

func (h *harness) runBaseline(ctx context.Context, d baselines.Design) (*designResult, error) {
	stock := h.cfg.stock
	id, err := baselines.CreateActivity(ctx, h.bdb, d.Name, stock)
	if err != nil {
		return nil, err
	}
	url := h.baseURL + d.Path(id)
	m, err := h.measure(ctx, d.Key, url, h.users(d.Key), h.cfg.duration)
	if err != nil {
		return nil, err
	}
	res := m.res
	r := newResult(d.Key, d.Name, d.Short, d.Title, stock, m)
	records, left, err := baselines.Counts(ctx, h.bdb, id)
	if err != nil {
		return nil, err
	}
	if res.SoldOut > 0 && records < stock {
		// Sell what is left, one join at a time: what cannot be sold is
		// stranded.
		if r.Drained, err = h.drain(ctx, url, h.users(d.Key)+"drain-", stock-records); err != nil {
			return nil, err
		}
		if records, left, err = baselines.Counts(ctx, h.bdb, id); err != nil {
			return nil, err
		}
	}
	if d.Key == "e" {
		// Seed 002's MySQL stock is the snapshot its consumer writes.
		if left, err = baselines.WaitSnapshot(ctx, h.bdb, id, stock-records, 5*time.Second); err != nil {
			return nil, err
		}
	}
	h.account(r, records, r.OK+r.Drained, res.SoldOut > 0)
	r.MySQLStock = &left
	if left != stock-records {
		if d.Key == "e" {
			r.Notes = append(r.Notes, fmt.Sprintf("MySQL stock snapshot %d, stock − records %d", left, stock-records))
		} else {
			h.problem(true, d.Key, "MySQL stock %d ≠ stock − records %d", left, stock-records)
		}
	}
	if h.cfg.soldOutDuration > 0 {
		sid, err := baselines.CreateActivity(ctx, h.bdb, d.Name, 1)
		if err != nil {
			return nil, err
		}
		if r.SoldOutRun, err = h.soldOutRun(ctx, h.baseURL+d.Path(sid), d.Key); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (h *harness) runService(ctx context.Context) (*designResult, error) {
	if h.svcBuildErr != nil {
		return nil, h.svcBuildErr
	}
	started := time.Now()
	svc, err := h.startService(ctx)
	defer h.stopService() // also the broker, or a service half started
	if err != nil {
		return nil, fmt.Errorf("start the service: %w", err)
	}
	fmt.Fprintf(os.Stderr, "service ready in %v\n", time.Since(started).Round(time.Millisecond))
	stock := h.cfg.stock
	id, err := svc.openActivity(ctx, "compare "+h.tag, stock)
	if err != nil {
		return nil, err
	}
	url := fmt.Sprintf("%s/api/v1/activities/%d/join", svc.url, id)
	profiled := h.profile(ctx)
	hist0, herr := svc.histSums(ctx)
	m, err := h.measure(ctx, "f", url, h.users("f"), h.cfg.duration)
	if err != nil {
		return nil, err
	}
	res := m.res
	hist1, herr1 := svc.histSums(ctx)
	if err := <-profiled; err != nil {
		h.problem(false, "f", "profile: %v", err)
	}
	r := newResult("f", "service", "this service (join)", "this service's join endpoint: claim.lua, Kafka (acks=all), confirm.lua", stock, m)
	if err := errors.Join(herr, herr1); err != nil {
		h.problem(false, "f", "latency budget: %v", err)
	}
	r.Budget = budgetOf(hist0, hist1)
	st, ok, err := svc.settle(ctx, id, h.cfg.settle)
	if err != nil {
		return nil, err
	}
	if !ok {
		h.problem(true, "f", "did not settle within %v: %+v", h.cfg.settle, st)
	}
	if res.SoldOut > 0 && st.Recorded < stock {
		if r.Drained, err = h.drain(ctx, url, h.users("f")+"drain-", stock-st.Recorded); err != nil {
			return nil, err
		}
		if st, ok, err = svc.settle(ctx, id, h.cfg.settle); err != nil {
			return nil, err
		} else if !ok {
			h.problem(true, "f", "did not settle within %v after the drain: %+v", h.cfg.settle, st)
		}
	}
	r.Stats = &st
	h.account(r, st.Recorded, max(r.OK+r.Drained, st.Issued), res.SoldOut > 0)
	if st.Surplus != stock-st.Claimed {
		r.Notes = append(r.Notes, fmt.Sprintf("MySQL surplus %d ≠ stock − claimed %d at the end", st.Surplus, stock-st.Claimed))
	}
	if h.cfg.soldOutDuration > 0 {
		sid, err := svc.openActivity(ctx, "compare sold out "+h.tag, 1)
		if err != nil {
			return nil, err
		}
		if r.SoldOutRun, err = h.soldOutRun(ctx, fmt.Sprintf("%s/api/v1/activities/%d/join", svc.url, sid), "f"); err != nil {
			return nil, err
		}
	}
	if len(h.cfg.burst.Rates) > 0 || len(h.cfg.burst.Overload) > 0 {
		plan := h.cfg.burst
		plan.Bases = []string{svc.url}
		plan.OverloadStock = h.cfg.stock
		fmt.Fprintf(os.Stderr, "(f) open-loop bursts at %v arrivals/s, then at %v× the highest held, %v each …\n", plan.Rates, plan.Overload, plan.Duration)
		// A failed burst ends the bursts, not (f): its closed-loop figures
		// stand, and the bursts done so far are checked.
		if r.Burst, err = burstSteps(ctx, svc, plan); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			h.problem(true, "f", "bursts: %v", err)
		}
		for _, st := range r.Burst {
			if err := h.checkBurst(ctx, svc, st); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// checkBurst checks that a burst's sale is exact once settled: no more
// tokens than stock, a record for every token answered, and after a sell-out
// (sold_out answers) nothing stranded, selling what is left one join at a
// time as after the closed-loop run.
func (h *harness) checkBurst(ctx context.Context, svc *service, b burstStep) error {
	if b.SoldOutBefore {
		if b.OK > 0 {
			h.problem(true, "f", "OVERSOLD: %d tokens in the burst at %d/s on a sold-out activity", b.OK, b.Rate)
		}
		return nil
	}
	st, ok, err := svc.settle(ctx, b.Activity, h.cfg.settle)
	if err != nil {
		return err
	}
	if !ok {
		h.problem(true, "f", "the burst at %d/s did not settle within %v: %+v", b.Rate, h.cfg.settle, st)
	}
	if st.Issued > b.Stock || b.OK > b.Stock {
		h.problem(true, "f", "OVERSOLD in the burst at %d/s: %d issued, %d tokens answered, stock %d", b.Rate, st.Issued, b.OK, b.Stock)
	}
	if b.OK > st.Recorded {
		h.problem(true, "f", "the burst at %d/s answered %d tokens but only %d are recorded", b.Rate, b.OK, st.Recorded)
	}
	// Every join was answered (none failed or timed out): a token issued
	// beyond those answered was taken by a join answered otherwise, a shed
	// one above all.
	if b.ServerErrors == 0 && st.Issued != b.OK {
		h.problem(true, "f", "the burst at %d/s answered %d tokens but %d were issued", b.Rate, b.OK, st.Issued)
	}
	if b.SoldOut > 0 && st.Recorded < b.Stock {
		url := svc.url + joinPath(b.Activity)
		if _, err := h.drain(ctx, url, h.users("f")+fmt.Sprintf("burst-%d-drain-", b.Rate), b.Stock-st.Recorded); err != nil {
			return err
		}
		if st, _, err = svc.settle(ctx, b.Activity, h.cfg.settle); err != nil {
			return err
		}
		if st.Recorded != b.Stock {
			h.problem(true, "f", "the burst at %d/s said sold out, and %d of %d slots could not be sold after it", b.Rate, b.Stock-st.Recorded, b.Stock)
		}
	}
	return nil
}

// profile fetches a CPU profile of the service over (f)'s run (it starts
// after the pause that precedes the run) and then its allocations, when
// -profile is set.
func (h *harness) profile(ctx context.Context) <-chan error {
	done := make(chan error, 1)
	if h.cfg.profileDir == "" {
		done <- nil
		return done
	}
	go func() {
		if err := load.Sleep(ctx, h.cfg.pause); err != nil {
			done <- err
			return
		}
		secs := max(1, int(h.cfg.duration.Seconds())-1)
		base := "http://" + h.pprofAddr + "/debug/pprof/"
		if err := fetch(ctx, fmt.Sprintf("%sprofile?seconds=%d", base, secs), filepath.Join(h.cfg.profileDir, "service-cpu.pprof")); err != nil {
			done <- err
			return
		}
		done <- fetch(ctx, base+"allocs", filepath.Join(h.cfg.profileDir, "service-allocs.pprof"))
	}()
	return done
}

func fetch(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = res.Body.Close() }() // read to the end by the copy below
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, res.Status)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		_ = f.Close() // the copy's error is the one to tell
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s (go tool pprof -top %s)\n", path, path)
	return f.Close()
}

func (h *harness) runCeiling(ctx context.Context) (*designResult, error) {
	m, err := h.measure(ctx, "g", h.baseURL+baselines.CeilingPath, h.users("g"), h.cfg.duration)
	if err != nil {
		return nil, err
	}
	return newResult("g", "ceiling", "bare net/http (ceiling)", "bare net/http endpoint: decodes the join's JSON, answers a token's JSON with encoding/json, nothing else", 0, m), nil
}

// account fills records, oversold and unsold, and reports what must never
// happen: more tokens than stock, a token answered without its record, and
// (except for seed 002, whose flaw it is) stock stranded after a sell-out.
func (h *harness) account(r *designResult, records, answered int64, soldOut bool) {
	r.Records = &records
	r.Oversold = max(0, max(records, answered)-r.Stock)
	if r.Oversold > 0 {
		h.problem(true, r.Key, "OVERSOLD: %d records, %d tokens answered, stock %d", records, answered, r.Stock)
	}
	if answered > records {
		h.problem(true, r.Key, "%d tokens answered but only %d records", answered, records)
	}
	if soldOut {
		unsold := max(0, r.Stock-records)
		r.Unsold = &unsold
		if unsold > 0 {
			h.problem(r.Key != "e", r.Key, "%d of %d slots stranded: the design said sold out, and they could not be sold after the run", unsold, r.Stock)
		}
	}
}

// soldOutRun sells an activity of stock 1 out with one join, then measures
// the sold-out answers.
func (h *harness) soldOutRun(ctx context.Context, url, key string) (*runResult, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	status, body, err := load.Post(ctx, client, url, h.users(key)+"first")
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("sold-out run: the one join answered %d %s", status, body)
	}
	m, err := h.measure(ctx, key, url, h.users(key)+"so-", h.cfg.soldOutDuration)
	if err != nil {
		return nil, err
	}
	if m.res.OK > 0 {
		h.problem(true, key, "OVERSOLD: %d tokens on a sold-out activity", m.res.OK)
	}
	return newRun(m), nil
}

// drain sends joins one at a time until a sold-out answer, at most n+5
// joins or 15 s, and returns the tokens it got.
func (h *harness) drain(ctx context.Context, url, users string, n int64) (int64, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(15 * time.Second)
	var ok int64
	for i := int64(0); i < n+5 && time.Now().Before(deadline); i++ {
		status, body, err := load.Post(ctx, client, url, fmt.Sprintf("%s%d", users, i))
		if err != nil {
			return ok, err
		}
		if status == http.StatusOK {
			ok++
		} else if load.IsSoldOut(status, body) {
			break
		}
	}
	return ok, nil
}

func (h *harness) problem(isErr bool, key, format string, args ...any) {
	h.problems = append(h.problems, problem{Error: isErr, Design: key, Message: fmt.Sprintf(format, args...)})
}
