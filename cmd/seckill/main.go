// Command seckill is the flash-sale slot-token service: marketing staff open
// lottery activities with a fixed stock of slots, and users join them over
// HTTP to get slot tokens.
//
//	seckill [flags]              serve the API (the default)
//	seckill migrate [flags]      create the database, apply the migrations, exit
//	seckill healthcheck [flags]  exit 0 when the local server answers /healthz
//	seckill broker [flags]       run the development Kafka-protocol broker alone
//	seckill staff add|list|remove [flags]  staff accounts with roles
//	seckill -version             print the version
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"seckill/activity/mysql"
	"seckill/mq"
)

// version is stamped at build time: go build -ldflags "-X main.version=v1.2.3"
// (make build and the Dockerfile do).
var version = "dev"

const commandsUsage = `
Commands:
  seckill [flags]              serve the API (the default)
  seckill migrate [flags]      create the database and apply the migrations, then exit
  seckill healthcheck [flags]  exit 0 when the server on -http-addr answers GET /healthz, else 1
  seckill broker [flags]       run the embedded Kafka-protocol broker alone on -broker-addr, its data in
                               -kafka-data-dir, until SIGINT/SIGTERM, for several instances to share
                               (SECKILL_KAFKA_BROKERS); for development and tests only
  seckill staff add|list|remove  staff accounts with roles (seckill staff for its usage)
  seckill -version             print the version and exit
`

func main() {
	os.Exit(run(os.Args[1:], getenv, os.Stdout, os.Stderr))
}

// run runs the command named by args and returns the process exit code: 0 on
// success (for the server: after a clean shutdown), 1 when the work fails,
// 2 for a bad command line. Each failure is one line on stderr.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	out, errOut := &output{w: stdout}, &output{w: stderr}
	code := dispatch(args, getenv, out, errOut)
	if out.err != nil && code == 0 {
		errOut.printf("seckill: writing to standard output: %v\n", out.err)
		return 1
	}
	return code
}

// output is where a command writes for its user. It keeps the first write
// that failed and writes nothing after it, so that a command whose output
// was lost (a closed pipe, a full disk) can exit 1 rather than 0; what fails
// to reach stderr has nowhere else to go.
type output struct {
	w   io.Writer
	err error
}

func (o *output) Write(p []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	n, err := o.w.Write(p)
	o.err = err
	return n, err
}

// printf writes as fmt.Fprintf does; a failure is kept in o.err.
func (o *output) printf(format string, a ...any) { _, _ = fmt.Fprintf(o, format, a...) }

func dispatch(args []string, getenv func(string) string, stdout, stderr *output) int {
	if len(args) > 0 && args[0] == "staff" {
		return staffCommand(args[1:], getenv, stdout, stderr)
	}
	cmd, flags, showVersion := splitCommand(newFlagSet(getenv, io.Discard), args)
	if showVersion || cmd == "version" {
		stdout.printf("seckill %s\n", version)
		return 0
	}
	switch cmd {
	case "", "serve", "migrate", "healthcheck", "broker":
	case "help":
		flags = []string{"-h"}
	default:
		stderr.printf("seckill: unknown command %q: the commands are migrate, healthcheck and broker (seckill -h lists them and the flags)\n", cmd)
		return 2
	}

	// LoadConfig writes the usage and the flag package's own complaint; keep
	// them for -h only, so that a bad command line is one line.
	var usage bytes.Buffer
	cfg, err := LoadConfig(flags, getenv, &usage)
	if errors.Is(err, flag.ErrHelp) {
		stderr.printf("%s%s", usage.Bytes(), commandsUsage)
		return 0
	}
	if err != nil {
		stderr.printf("seckill: %v\n", err)
		return 2
	}

	switch cmd {
	case "migrate":
		return migrate(cfg, stdout, stderr)
	case "healthcheck":
		return healthcheck(cfg, stdout, stderr)
	case "broker":
		return runBroker(cfg, stdout, stderr)
	}
	return serve(cfg, stdout, stderr)
}

// splitCommand finds the command in args: the first argument that is neither
// a flag nor a flag's value. Which flags take a value it asks fs, as fs.Parse
// does. It returns the command, the other arguments, and whether -version was
// among them.
func splitCommand(fs *flag.FlagSet, args []string) (cmd string, rest []string, showVersion bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || a == "-" || !strings.HasPrefix(a, "-") {
			if cmd != "" || a == "--" || a == "-" {
				// Later arguments are left for LoadConfig to refuse.
				rest = append(rest, args[i:]...)
				break
			}
			cmd = a
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "version" {
			on, err := strconv.ParseBool(value)
			if hasValue && err != nil {
				rest = append(rest, a) // LoadConfig says it is not a boolean
				continue
			}
			showVersion = showVersion || !hasValue || on
			continue
		}
		f := fs.Lookup(name)
		if f == nil && name != "h" && name != "help" {
			// An unknown flag: LoadConfig names it.
			rest = append(rest, args[i:]...)
			break
		}
		rest = append(rest, a)
		if f != nil && !isBoolFlag(f) && !hasValue && i+1 < len(args) {
			i++
			rest = append(rest, args[i])
		}
	}
	return cmd, rest, showVersion
}

// drainTimeout is how long a stopping server waits for the joins in flight,
// the producer's flush and the consumer's commit.
const drainTimeout = 30 * time.Second

// serve starts the server and blocks until a signal stops it.
func serve(cfg Config, stdout, stderr *output) int {
	log := newLogger(stderr, cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	app, err := NewApp(ctx, cfg, log)
	if err != nil {
		stderr.printf("seckill: %v\n", err)
		return 1
	}
	if err := app.Start(); err != nil {
		app.Close()
		stderr.printf("seckill: %v\n", err)
		return 1
	}
	if err := app.Announce(stdout); err != nil {
		// The server runs all the same; the log says where it is.
		log.Warn("cannot write the announcement to standard output", "err", err, "url", app.URL())
		stdout.err = nil
	}
	<-ctx.Done()
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if err := app.Shutdown(sctx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// runBroker runs the embedded Kafka-protocol broker on its own until a signal
// stops it, so that several instances can share one in development.
func runBroker(cfg Config, stdout, stderr *output) int {
	// Only here, not for every command: an env file shared with the
	// servers may hold what suits a container's listener.
	if host, _, _ := net.SplitHostPort(cfg.BrokerAddr); host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified() {
		stderr.printf("seckill: SECKILL_BROKER_ADDR (-broker-addr) %q: must name the host clients reach it at (the broker tells them the address it listens on), e.g. 127.0.0.1:9092 or 10.0.0.5:9092, not every interface\n", cfg.BrokerAddr)
		return 2
	}
	log := newLogger(stderr, cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Warn("seckill broker is a one-node Kafka-protocol broker for development and tests: " +
		"no replication, and the events acknowledged since its last flush are lost if the machine crashes; run Kafka in production")
	e, err := mq.StartEmbedded(cfg.KafkaDataDir, cfg.BrokerAddr, cfg.KafkaPartitions)
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		stderr.printf("seckill: %s: free the address or set SECKILL_BROKER_ADDR (-broker-addr)\n", oneLine(err))
		return 1
	case err != nil:
		stderr.printf("seckill: %s: check SECKILL_KAFKA_DATA_DIR (-kafka-data-dir) %q\n", oneLine(err), cfg.KafkaDataDir)
		return 1
	}
	addr := strings.Join(e.Brokers(), ",")
	log.Info("broker listening", "addr", addr, "dataDir", cfg.KafkaDataDir)
	stdout.printf("seckill broker listening on %s; point the instances at it with SECKILL_KAFKA_BROKERS=%s\n", addr, addr)
	<-ctx.Done()
	log.Info("broker stopping")
	e.Close()
	log.Info("broker stopped")
	return 0
}

// migrate creates the database when it is missing and applies the pending
// migrations, as the server does at start.
func migrate(cfg Config, stdout, stderr *output) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := mysql.Open(ctx, cfg.MySQLDSN)
	if err != nil {
		stderr.printf("seckill: %s: start MySQL/MariaDB or set SECKILL_MYSQL_DSN\n", oneLine(err))
		return 1
	}
	defer func() { _ = db.Close() }() // a command that only reads
	var st struct {
		Name    string `db:"name"`
		Count   int    `db:"n"`
		Version int    `db:"v"`
	}
	if err := db.GetContext(ctx, &st,
		"SELECT DATABASE() AS name, COUNT(*) AS n, COALESCE(MAX(version), 0) AS v FROM schema_migrations"); err != nil {
		stderr.printf("seckill: mysql: reading schema_migrations: %s\n", oneLine(err))
		return 1
	}
	stdout.printf("seckill: database %s is migrated: schema version %d, %d migrations applied\n", st.Name, st.Version, st.Count)
	return 0
}

// healthcheck asks the server on cfg.HTTPAddr for /healthz, so that a
// container image without curl can check itself.
func healthcheck(cfg Config, stdout, stderr *output) int {
	host, port, err := net.SplitHostPort(cfg.HTTPAddr)
	if err != nil {
		stderr.printf("seckill: healthcheck: SECKILL_HTTP_ADDR %q: %v\n", cfg.HTTPAddr, err)
		return 1
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1" // listening on every interface: ask over loopback
	}
	url := "http://" + net.JoinHostPort(host, port) + "/healthz"
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Get(url)
	if err != nil {
		stderr.printf("seckill: healthcheck: %s\n", oneLine(err))
		return 1
	}
	defer func() { _ = resp.Body.Close() }() // read to the end below
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		stderr.printf("seckill: healthcheck: GET %s answered %s\n", url, resp.Status)
		return 1
	}
	stdout.printf("seckill: healthy (%s)\n", url)
	return 0
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
