package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"seckill/activity/httpapi"
)

// Config is the server's configuration: environment variables, overridden by
// flags of the same meaning.
type Config struct {
	HTTPAddr     string
	RedisAddrs   []string
	RedisDB      int
	RedisPrefix  string
	MySQLDSN     string
	KafkaBrokers []string
	KafkaTopic   string
	// TokensTopic is where every token settled valid is published.
	TokensTopic  string
	AdminToken   string
	KafkaDataDir string
	// KafkaPartitions is the partition count of the topics created at start.
	KafkaPartitions int
	// BrokerAddr is where seckill broker listens.
	BrokerAddr     string
	Lease          time.Duration
	JobInterval    time.Duration
	Retention      time.Duration
	ProduceTimeout time.Duration
	Walkthrough    bool
	PprofAddr      string
	RatePerIP      httpapi.Limit
	// SignInFailures limits the failed admin sign-ins of one client
	// address; a zero Rate turns the limit off.
	SignInFailures httpapi.Limit
	RatePerUser    httpapi.Limit
	CORSOrigins    []string
	LogLevel       string
	// MaxJoinsInFlight bounds the joins in progress at once: the limit, or
	// with JoinLimit adaptive its ceiling, which keeps the joins' mean
	// latency to JoinLatencyTarget; JoinQueueTimeout is how long a join
	// past the limit waits for a place before it is answered 503.
	MaxJoinsInFlight  int
	JoinLimit         string
	JoinLatencyTarget time.Duration
	JoinQueueTimeout  time.Duration

	// KafkaReplicationFactor and KafkaMinInsyncReplicas are given to the
	// topics created at start; 0 = min(3, live brokers) and min(2,
	// replication factor).
	KafkaReplicationFactor int
	KafkaMinInsyncReplicas int
	// RedisAllowEviction lets the server start on a Redis whose
	// maxmemory-policy may evict keys.
	RedisAllowEviction bool

	// UserAuth is where a join's user comes from: httpapi.UserFromBody,
	// UserFromHeader (the header UserHeader) or UserFromJWT (the sub of a
	// bearer JWT verified against the JWKS file JWTKeys, of JWTIssuer and
	// for JWTAudience when they are set).
	UserAuth    string
	UserHeader  string
	JWTKeys     string
	JWTIssuer   string
	JWTAudience string
	// jwtKeysCheckEvery is how often the running server reads the JWKS
	// file for a change; defaultJWTKeysCheckEvery when zero. Tests change
	// it.
	jwtKeysCheckEvery time.Duration

	// evictionCheckEvery is how often the running server reads Redis's
	// maxmemory-policy again; defaultEvictionCheckEvery when zero. Tests
	// shorten it.
	evictionCheckEvery time.Duration
}

// configVar is one setting: its env variable, flag, default and help, how
// it is read, and whether it is true or false (a flag that may be given bare,
// -walkthrough, and takes no separate value).
type configVar struct {
	env, flag, def, help string
	set                  func(c *Config, v string) error
	isBool               bool
}

// setting is a configVar given as text, parsed by set.
func setting(env, flag, def, help string, set func(c *Config, v string) error) configVar {
	return configVar{env: env, flag: flag, def: def, help: help, set: set}
}

// boolSetting is a configVar that is false unless set to true.
func boolSetting(env, flag, help string, field func(c *Config) *bool) configVar {
	return configVar{env: env, flag: flag, def: "false", help: help, isBool: true, set: func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("must be true or false")
		}
		*field(c) = b
		return nil
	}}
}

var configVars = []configVar{
	setting("SECKILL_HTTP_ADDR", "http-addr", ":8080", "listen address", func(c *Config, v string) error {
		c.HTTPAddr = v
		return nil
	}),
	setting("SECKILL_REDIS_ADDR", "redis-addr", "127.0.0.1:6379", "Redis address; several, comma-separated, for Redis Cluster", func(c *Config, v string) error {
		c.RedisAddrs = splitList(v)
		if len(c.RedisAddrs) == 0 {
			return errors.New("needs at least one address")
		}
		return nil
	}),
	setting("SECKILL_REDIS_DB", "redis-db", "0", "Redis database number (single node only)", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 15 {
			return errors.New("must be a number from 0 to 15")
		}
		c.RedisDB = n
		return nil
	}),
	setting("SECKILL_REDIS_PREFIX", "redis-prefix", "seckill", "prefix of every Redis key", func(c *Config, v string) error {
		if v == "" || strings.ContainsAny(v, "{} ") {
			return errors.New("must be non-empty, without braces or spaces")
		}
		c.RedisPrefix = v
		return nil
	}),
	boolSetting("SECKILL_REDIS_ALLOW_EVICTION", "redis-allow-eviction", "start although Redis's maxmemory-policy may evict the activities' keys (only noeviction is safe)",
		func(c *Config) *bool { return &c.RedisAllowEviction }),
	setting("SECKILL_MYSQL_DSN", "mysql-dsn", "root@tcp(127.0.0.1:3306)/seckill?parseTime=true", "MySQL DSN; the database is created and migrated at start", func(c *Config, v string) error {
		c.MySQLDSN = v
		return nil
	}),
	setting("SECKILL_KAFKA_BROKERS", "kafka-brokers", "", "Kafka brokers, comma-separated; empty = embedded development broker", func(c *Config, v string) error {
		c.KafkaBrokers = splitList(v)
		return nil
	}),
	setting("SECKILL_KAFKA_TOPIC", "kafka-topic", "seckill.partake", "topic of participation events", func(c *Config, v string) error {
		if v == "" {
			return errors.New("must not be empty")
		}
		c.KafkaTopic = v
		return nil
	}),
	setting("SECKILL_TOKENS_TOPIC", "tokens-topic", "seckill.tokens", "topic on which every token settled valid is published, at least once, keyed by activity", func(c *Config, v string) error {
		if v == "" {
			return errors.New("must not be empty")
		}
		c.TokensTopic = v
		return nil
	}),
	setting("SECKILL_KAFKA_REPLICATION_FACTOR", "kafka-replication-factor", "0", "replication factor of the topics created at start; 0 = min(3, live brokers)", func(c *Config, v string) error {
		return parseCount(&c.KafkaReplicationFactor, v, "0 = min(3, live brokers)")
	}),
	setting("SECKILL_KAFKA_MIN_INSYNC_REPLICAS", "kafka-min-insync-replicas", "0", "min.insync.replicas of the topics created at start; 0 = min(2, replication factor)", func(c *Config, v string) error {
		return parseCount(&c.KafkaMinInsyncReplicas, v, "0 = min(2, replication factor)")
	}),
	setting("SECKILL_KAFKA_PARTITIONS", "kafka-partitions", "6", "partitions of the topics created at start: at most this many instances share the consuming", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPartitions {
			return fmt.Errorf("must be a whole number from 1 to %d", maxPartitions)
		}
		c.KafkaPartitions = n
		return nil
	}),
	setting("SECKILL_KAFKA_DATA_DIR", "kafka-data-dir", "data/kafka", "data directory of the embedded development broker", func(c *Config, v string) error {
		c.KafkaDataDir = v
		return nil
	}),
	setting("SECKILL_BROKER_ADDR", "broker-addr", "127.0.0.1:9092", "listen address of seckill broker; it tells clients this address, so not 0.0.0.0", func(c *Config, v string) error {
		_, port, err := net.SplitHostPort(v)
		if err != nil {
			return errors.New("must be HOST:PORT, e.g. 127.0.0.1:9092")
		}
		if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			return errors.New("must be HOST:PORT with a port from 0 to 65535")
		}
		c.BrokerAddr = v // seckill broker checks that clients can reach the host
		return nil
	}),
	setting("SECKILL_PRODUCE_TIMEOUT", "produce-timeout", "3s", "how long a join waits for Kafka to acknowledge its event", func(c *Config, v string) error {
		return parseDuration(&c.ProduceTimeout, v, 100*time.Millisecond, time.Minute)
	}),
	setting("SECKILL_JOB_INTERVAL", "job-interval", "1s", "how often the reconcile job runs", func(c *Config, v string) error {
		return parseDuration(&c.JobInterval, v, 10*time.Millisecond, time.Hour)
	}),
	setting("SECKILL_RETENTION", "retention", "24h", "how long after an activity closes its Redis state is kept; then tokens and stats answer from MySQL", func(c *Config, v string) error {
		return parseDuration(&c.Retention, v, time.Second, 90*24*time.Hour)
	}),
	setting("SECKILL_ADMIN_TOKEN", "admin-token", "", "bearer token of /api/v1/admin/*; generated and printed at start when unset", func(c *Config, v string) error {
		c.AdminToken = v
		return nil
	}),
	setting("SECKILL_LEASE", "lease", "15s", "how long a claim may stay in flight before it is given back", func(c *Config, v string) error {
		return parseDuration(&c.Lease, v, 100*time.Millisecond, time.Hour)
	}),
	setting("SECKILL_LOG_LEVEL", "log-level", "info", "log level: debug, info, warn, error", func(c *Config, v string) error {
		switch v {
		case "debug", "info", "warn", "error":
			c.LogLevel = v
			return nil
		}
		return errors.New("must be debug, info, warn or error")
	}),
	setting("SECKILL_JOIN_RATE_PER_IP", "join-rate-per-ip", "0", "joins per second from one client address, as RATE or RATE/BURST; 0 = no limit", func(c *Config, v string) error {
		return parseLimit(&c.RatePerIP, v)
	}),
	setting("SECKILL_SIGN_IN_FAILURES", "sign-in-failures", "0.1/10", "failed admin sign-ins allowed from one client address, as RATE/BURST (BURST at once, then RATE a second); past it every admin request from there answers 429; 0 = no limit", func(c *Config, v string) error {
		return parseLimit(&c.SignInFailures, v)
	}),
	setting("SECKILL_JOIN_RATE_PER_USER", "join-rate-per-user", "5/10", "joins per second by one user of one activity, as RATE or RATE/BURST; 0 = no limit", func(c *Config, v string) error {
		return parseLimit(&c.RatePerUser, v)
	}),
	setting("SECKILL_MAX_JOINS_IN_FLIGHT", "max-joins-in-flight", "512", "most joins in progress on this instance at once, the ceiling of the adaptive limit; a join past the limit is answered 503 with Retry-After, nothing taken", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxJoinsInFlight {
			return fmt.Errorf("must be a whole number from 1 to %d", maxJoinsInFlight)
		}
		c.MaxJoinsInFlight = n
		return nil
	}),
	setting("SECKILL_JOIN_LIMIT", "join-limit", joinLimitAdaptive, "how the limit of joins in progress is set: adaptive (keeps the joins' latency to SECKILL_JOIN_LATENCY_TARGET, at most SECKILL_MAX_JOINS_IN_FLIGHT) or fixed (SECKILL_MAX_JOINS_IN_FLIGHT)", func(c *Config, v string) error {
		if v != joinLimitAdaptive && v != joinLimitFixed {
			return errors.New("must be adaptive or fixed")
		}
		c.JoinLimit = v
		return nil
	}),
	setting("SECKILL_JOIN_LATENCY_TARGET", "join-latency-target", "20ms", "least mean latency of joins the adaptive limit keeps to (three times the fastest token join of the last minutes when that is more): under it the limit grows, over it it shrinks", func(c *Config, v string) error {
		return parseDuration(&c.JoinLatencyTarget, v, time.Millisecond, 10*time.Second)
	}),
	setting("SECKILL_JOIN_QUEUE_TIMEOUT", "join-queue-timeout", "0", "how long a join past the limit waits for a place before it is answered 503, e.g. 2ms; 0 = not at all", func(c *Config, v string) error {
		return parseDuration(&c.JoinQueueTimeout, v, 0, time.Second)
	}),
	setting("SECKILL_USER_AUTH", "user-auth", httpapi.UserFromBody, "where a join's user comes from: body (the userId field; anyone can pick one: development only), header (SECKILL_USER_HEADER, set by the gateway) or jwt (the sub of Authorization: Bearer <JWT>, keys in SECKILL_JWT_KEYS)", func(c *Config, v string) error {
		switch v {
		case httpapi.UserFromBody, httpapi.UserFromHeader, httpapi.UserFromJWT:
			c.UserAuth = v
			return nil
		}
		return errors.New("must be body, header or jwt")
	}),
	setting("SECKILL_USER_HEADER", "user-header", httpapi.DefaultUserHeader, "the header that names the user with SECKILL_USER_AUTH=header; the gateway sets it and must strip it from what callers send", func(c *Config, v string) error {
		if !headerName(v) || reservedHeader(v) {
			return errors.New("must be a header name of up to 64 letters, digits and - that HTTP or this service does not use for something else (not Authorization, Host, Cookie, Idempotency-Key, Content-*, Forwarded, X-Forwarded-*…), e.g. X-User-ID")
		}
		c.UserHeader = v
		return nil
	}),
	setting("SECKILL_JWT_KEYS", "jwt-keys", "", "with SECKILL_USER_AUTH=jwt: path of the JWKS file of the keys users' tokens are signed with (oct, RSA, EC; by kid); read again on SIGHUP and when it changes", func(c *Config, v string) error {
		c.JWTKeys = v
		return nil
	}),
	setting("SECKILL_JWT_ISSUER", "jwt-issuer", "", "with SECKILL_USER_AUTH=jwt: the iss every token must have; empty = not checked", func(c *Config, v string) error {
		c.JWTIssuer = v
		return nil
	}),
	setting("SECKILL_JWT_AUDIENCE", "jwt-audience", "", "with SECKILL_USER_AUTH=jwt: an aud every token must have; empty = not checked", func(c *Config, v string) error {
		c.JWTAudience = v
		return nil
	}),
	setting("SECKILL_CORS_ORIGINS", "cors-origins", "", "browser origins allowed to call the API, comma-separated; empty = CORS off", func(c *Config, v string) error {
		c.CORSOrigins = splitList(v)
		return nil
	}),
	setting("SECKILL_PPROF_ADDR", "pprof-addr", "", "listen address of the Go profiler (net/http/pprof); empty = off", func(c *Config, v string) error {
		c.PprofAddr = v
		return nil
	}),
	boolSetting("SECKILL_WALKTHROUGH", "walkthrough", "print a curl walk-through at start (make run)",
		func(c *Config) *bool { return &c.Walkthrough }),
}

func parseDuration(dst *time.Duration, v string, lo, hi time.Duration) error {
	d, err := time.ParseDuration(v)
	if err != nil || d < lo || d > hi {
		return fmt.Errorf("must be a duration from %v to %v, e.g. 15s", lo, hi)
	}
	*dst = d
	return nil
}

// maxPartitions bounds SECKILL_KAFKA_PARTITIONS: more is a typing error
// rather than a plan.
const maxPartitions = 1000

// The limit of joins in progress: adaptive or fixed; maxJoinsInFlight
// bounds SECKILL_MAX_JOINS_IN_FLIGHT.
const (
	joinLimitAdaptive = "adaptive"
	joinLimitFixed    = "fixed"
	maxJoinsInFlight  = 100_000
)

// parseCount reads a replica count: 0 (the default, meaning zero) or a whole
// number up to Kafka's limit.
func parseCount(dst *int, v, zero string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > math.MaxInt16 {
		return fmt.Errorf("must be a whole number from 0 to %d; %s", math.MaxInt16, zero)
	}
	*dst = n
	return nil
}

func parseLimit(dst *httpapi.Limit, v string) error {
	r, b, hasBurst := strings.Cut(v, "/")
	rate, err := strconv.ParseFloat(r, 64)
	if err != nil || math.IsNaN(rate) || rate < 0 || rate > 1e6 {
		return errors.New("must be RATE or RATE/BURST with RATE from 0 to 1000000, e.g. 5/10")
	}
	burst := 0
	if hasBurst {
		if burst, err = strconv.Atoi(b); err != nil || burst < 1 || burst > 1e6 {
			return errors.New("BURST must be a whole number from 1 to 1000000")
		}
	}
	*dst = httpapi.Limit{Rate: rate, Burst: burst}
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// LoadConfig reads the configuration from the environment and then from the
// command-line arguments. It returns flag.ErrHelp for -h.
func LoadConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	var c Config
	fs := newFlagSet(getenv, stderr)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	text := func(flag string) string { return fs.Lookup(flag).Value.String() }
	for _, v := range configVars {
		if err := v.set(&c, text(v.flag)); err != nil {
			return c, fmt.Errorf("%s (-%s) %q: %w", v.env, v.flag, text(v.flag), err)
		}
	}
	if c.KafkaReplicationFactor > 0 && c.KafkaMinInsyncReplicas > c.KafkaReplicationFactor {
		return c, fmt.Errorf("SECKILL_KAFKA_MIN_INSYNC_REPLICAS (-kafka-min-insync-replicas) %q: must not be more than SECKILL_KAFKA_REPLICATION_FACTOR (%d), or no event could ever be acknowledged",
			text("kafka-min-insync-replicas"), c.KafkaReplicationFactor)
	}
	// The event topic's consumer would park every token as an undecodable
	// event.
	if c.TokensTopic == c.KafkaTopic || c.TokensTopic == c.KafkaTopic+".dead" {
		return c, fmt.Errorf("SECKILL_TOKENS_TOPIC (-tokens-topic) %q: must not be SECKILL_KAFKA_TOPIC (%s) or its dead-letter topic",
			c.TokensTopic, c.KafkaTopic)
	}
	if err := checkUserAuth(c); err != nil {
		return c, err
	}
	return c, nil
}

// checkUserAuth refuses a jwt mode without keys, and JWT settings without
// the jwt mode: a server that would not check what its operator thinks it
// checks.
func checkUserAuth(c Config) error {
	if c.UserAuth == httpapi.UserFromJWT {
		if c.JWTKeys == "" {
			return errors.New("SECKILL_USER_AUTH (-user-auth) \"jwt\": needs SECKILL_JWT_KEYS (-jwt-keys), the path of the JWKS file of the keys users' tokens are signed with")
		}
		return nil
	}
	for _, s := range []struct{ env, flag, v string }{
		{"SECKILL_JWT_KEYS", "jwt-keys", c.JWTKeys},
		{"SECKILL_JWT_ISSUER", "jwt-issuer", c.JWTIssuer},
		{"SECKILL_JWT_AUDIENCE", "jwt-audience", c.JWTAudience},
	} {
		if s.v != "" {
			return fmt.Errorf("%s (-%s) %q: is only used with SECKILL_USER_AUTH=jwt, and SECKILL_USER_AUTH is %q", s.env, s.flag, s.v, c.UserAuth)
		}
	}
	return nil
}

// reservedHeader reports whether v names a header that carries something
// else: a gateway cannot set it for the user alone.
func reservedHeader(v string) bool {
	v = strings.ToLower(v)
	switch v {
	case "authorization", "host", "cookie", "idempotency-key", "forwarded", "connection", "transfer-encoding",
		"te", "upgrade", "trailer", "proxy-authorization", "x-request-id", "user-agent", "accept", "origin", "referer":
		return true
	}
	return strings.HasPrefix(v, "content-") || strings.HasPrefix(v, "x-forwarded-") || strings.HasPrefix(v, "accept-")
}

// headerName reports whether v is an HTTP header name of letters, digits
// and dashes, at most 64 of them.
func headerName(v string) bool {
	if v == "" || len(v) > 64 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// newFlagSet returns the flags of configVars, each holding its setting as
// text: the environment variable's value when set, else the default, until
// the flag is given. It writes the usage and the flag package's complaints
// to stderr.
func newFlagSet(getenv func(string) string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("seckill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		var b strings.Builder
		b.WriteString("seckill: flash-sale slot tokens for lottery activities.\n\nUsage: seckill [flags]\n\nFlags (each also read from the environment variable shown):\n")
		for _, v := range configVars {
			fmt.Fprintf(&b, "  -%s\t%s (env %s, default %q)\n", v.flag, v.help, v.env, v.def)
		}
		// As the flag package's own complaints to the same writer: a
		// failure is the writer's to keep (see output).
		_, _ = io.WriteString(stderr, b.String())
	}
	// -version is answered before the configuration is read (splitCommand);
	// defined here, a value that is not a boolean is refused as any other.
	fs.Bool("version", false, "print the version and exit")
	for _, v := range configVars {
		text := v.def
		if e := getenv(v.env); e != "" {
			text = e
		}
		fs.Var(&stringValue{s: text, isBool: v.isBool}, v.flag, v.help)
	}
	return fs
}

// isBoolFlag reports whether f is given bare and takes no separate value:
// what the flag package asks of a flag's Value when it parses.
func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func getenv(k string) string { return os.Getenv(k) }

// stringValue is a flag kept as text and checked after parsing; a boolean
// setting (isBool) may be given as a bare -flag.
type stringValue struct {
	s      string
	isBool bool
}

func (v *stringValue) String() string     { return v.s }
func (v *stringValue) Set(s string) error { v.s = s; return nil }
func (v *stringValue) IsBoolFlag() bool   { return v.isBool }
