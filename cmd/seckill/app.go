package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"seckill/activity"
	"seckill/activity/httpapi"
	"seckill/activity/jwtauth"
	"seckill/activity/mysql"
	"seckill/internal/inflight"
	"seckill/internal/loggate"
	"seckill/job"
	"seckill/mq"
	"seckill/stock"
)

// App is the running service: its connections, domain service and HTTP
// server. Tests start the same App on ":0".
type App struct {
	cfg Config
	log *slog.Logger

	rdb      redis.UniversalClient
	db       *sqlx.DB
	Store    *stock.Store
	Svc      *activity.Service
	embedded *mq.Embedded
	producer *mq.Producer
	consumer *mq.Consumer
	tokens   *mq.TokenPublisher
	staff    *activity.Staffing
	offsets  *mq.Offsets
	job      *job.Reconciler
	eviction *evictionWatch
	users    httpapi.UserAuth
	userKeys *jwtauth.Verifier // in jwt mode
	bgCancel context.CancelFunc
	bg       sync.WaitGroup
	closers  []closer // what Close undoes, in the order it was done

	adminToken     string
	generatedToken bool
	http           *http.Server
	ln             net.Listener
	served         chan error
	shutdownOnce   sync.Once
	shutdownErr    error
}

// NewApp connects to Redis and MySQL (creating and migrating the database)
// and wires the service. A dependency that does not answer fails within
// seconds with an error naming it and how to start it.
func NewApp(ctx context.Context, cfg Config, log *slog.Logger) (app *App, err error) {
	a := &App{cfg: cfg, log: log, adminToken: cfg.AdminToken}
	if a.adminToken == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		a.adminToken, a.generatedToken = hex.EncodeToString(b), true
	}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.openRedis(pctx); err != nil {
		return nil, err
	}
	signer, err := a.openMySQL(pctx)
	if err != nil {
		return nil, err
	}
	kcfg, err := a.openKafka()
	if err != nil {
		return nil, err
	}
	repo := mysql.NewRepository(a.db)
	a.Svc = activity.NewService(repo, a.Store, a.producer, signer, log)
	a.staff = activity.NewStaffing(repo)
	if a.consumer, err = mq.NewConsumer(kcfg, a.Svc, log); err != nil {
		return nil, err
	}
	a.closing("kafka consumer", a.consumer.Close)
	// The valid records' outbox in MySQL, published by one instance at a
	// time under a lease in Redis.
	if a.tokens, err = mq.NewTokenPublisher(kcfg, repo, a.Store, log); err != nil {
		return nil, err
	}
	a.closing("kafka token publisher", a.tokens.Close)
	if a.offsets, err = mq.NewOffsets(kcfg); err != nil {
		return nil, err
	}
	a.closing("kafka offsets", a.offsets.Close)
	a.Svc.UseEventLog(a.offsets)
	a.Svc.SetRetention(cfg.Retention)
	// Each activity's periodic work is leased to one instance at a time; a
	// few cycles without renewal hand it to another.
	a.Svc.SetJobLease("", max(3*cfg.JobInterval, time.Second))
	a.job = &job.Reconciler{Svc: a.Svc, Interval: cfg.JobInterval, Log: log}
	if err := a.openUserAuth(); err != nil {
		return nil, err
	}
	// Joins are counted in memory and added to Redis about once a second.
	a.Svc.UseTally(&activity.Tally{}, nil)
	a.http = a.newServer(kcfg.Brokers)
	return a, nil
}

// closer is what Close undoes: the close of one dependency.
type closer struct {
	what  string
	close func() error
}

// closing adds what to do at Close; Close does it in the reverse order.
func (a *App) closing(what string, f func() error) {
	a.closers = append(a.closers, closer{what, f})
}

// openRedis connects to Redis, checks its eviction policy and makes the
// slot store on it.
func (a *App) openRedis(ctx context.Context) error {
	// go-redis logs every failed dial of its pool; the start-up check and the
	// 503s say it once instead.
	redis.SetLogger(quietRedisLog{a.log})
	a.rdb = newRedisClient(a.cfg)
	a.closing("redis", a.rdb.Close)
	if err := a.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis at %s is not answering (%w): start it (redis-server) or set SECKILL_REDIS_ADDR",
			strings.Join(a.cfg.RedisAddrs, ","), err)
	}
	// Only noeviction keeps every key of an activity (see stock.SafePolicy).
	checkEviction := func(ctx context.Context) error { return stock.CheckEviction(ctx, a.rdb) }
	var err error
	if a.eviction, err = startEviction(ctx, checkEviction, a.cfg.RedisAllowEviction, a.cfg.evictionCheckEvery, a.log); err != nil {
		return err
	}
	a.Store = stock.New(a.rdb, stock.Options{Prefix: a.cfg.RedisPrefix, Lease: a.cfg.Lease, Log: a.log})
	a.closing("slot store", func() error { a.Store.Stop(); return nil })
	return nil
}

// openUserAuth sets where a join's user comes from, loading the JWKS file
// in jwt mode, and says so at start: in body mode, with a warning.
func (a *App) openUserAuth() error {
	cfg := a.cfg
	a.users = httpapi.UserAuth{Mode: cfg.UserAuth, Header: cfg.UserHeader}
	switch cfg.UserAuth {
	case httpapi.UserFromJWT:
		v, err := jwtauth.Load(cfg.JWTKeys, jwtauth.Options{Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience})
		if err != nil {
			return fmt.Errorf("%w: fix the file or set SECKILL_JWT_KEYS (-jwt-keys)", err)
		}
		a.userKeys, a.users.Tokens = v, v
		a.log.Info("joins take their user from the sub of a verified bearer JWT", "keys", cfg.JWTKeys,
			"keyCount", v.Keys().Len(), "algorithms", strings.Join(v.Keys().Algorithms(), ","),
			"issuer", cfg.JWTIssuer, "audience", cfg.JWTAudience)
		if cfg.JWTAudience == "" {
			a.log.Warn("SECKILL_JWT_AUDIENCE is empty: any token the keys verify joins, also one the same issuer made for another service; set the audience your issuer gives this one")
		}
	case httpapi.UserFromHeader:
		// Warned, not told: the service cannot see whether the gateway
		// strips the header, and whoever reaches it directly is anyone.
		a.log.Warn("joins take their user from a header: make sure the gateway sets it, strips the callers' own, and is the only way to reach the service",
			"header", cfg.UserHeader)
	default:
		a.log.Warn("SECKILL_USER_AUTH is body: a join's user is the userId of its body, so anyone can join as anyone and a bot can make up users; " +
			"for development only: set SECKILL_USER_AUTH=header behind a gateway that authenticates users, or jwt")
	}
	return nil
}

// defaultJWTKeysCheckEvery is how often the JWKS file is read for a change.
const defaultJWTKeysCheckEvery = time.Second

// watchUserKeys reads the JWKS file again on SIGHUP and whenever it changes,
// until ctx ends.
func (a *App) watchUserKeys(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{})
	every := a.cfg.jwtKeysCheckEvery
	if every <= 0 {
		every = defaultJWTKeysCheckEvery
	}
	a.bg.Add(2)
	go func() {
		defer a.bg.Done()
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				select {
				case reload <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	go func() { defer a.bg.Done(); a.userKeys.Watch(ctx, every, reload, a.log) }()
}

// openMySQL opens and migrates the database and returns the signer of the
// token secret kept in it.
func (a *App) openMySQL(ctx context.Context) (*activity.Signer, error) {
	db, err := mysql.Open(ctx, a.cfg.MySQLDSN)
	if err != nil {
		return nil, fmt.Errorf("%w: start MySQL/MariaDB or set SECKILL_MYSQL_DSN", err)
	}
	a.db = db
	a.closing("mysql", a.db.Close)
	secret, err := mysql.TokenSecret(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("mysql: token secret: %w", err)
	}
	return activity.NewSigner(secret)
}

// openKafka starts the embedded broker when no broker is configured,
// makes sure of the topics and starts the producer. It returns the
// configuration the consumer and the offsets use.
func (a *App) openKafka() (mq.Config, error) {
	cfg := a.cfg
	kcfg := mq.Config{Brokers: cfg.KafkaBrokers, Topic: cfg.KafkaTopic, TokensTopic: cfg.TokensTopic, ProduceTimeout: cfg.ProduceTimeout,
		ReplicationFactor: cfg.KafkaReplicationFactor, MinInsyncReplicas: cfg.KafkaMinInsyncReplicas}
	if len(kcfg.Brokers) == 0 {
		var err error
		if a.embedded, err = mq.StartEmbedded(cfg.KafkaDataDir, "127.0.0.1:0", cfg.KafkaPartitions); err != nil {
			return kcfg, err
		}
		a.closing("embedded kafka broker", func() error { a.embedded.Close(); return nil })
		kcfg.Brokers = a.embedded.Brokers()
		a.log.Warn("SECKILL_KAFKA_BROKERS is empty: using an embedded Kafka-protocol broker, for development only",
			"addr", strings.Join(kcfg.Brokers, ","), "dataDir", cfg.KafkaDataDir)
	}
	topics, err := mq.EnsureTopics(kcfg, int32(cfg.KafkaPartitions))
	if errors.Is(err, mq.ErrTopicSettings) {
		return kcfg, fmt.Errorf("%w: set SECKILL_KAFKA_REPLICATION_FACTOR and SECKILL_KAFKA_MIN_INSYNC_REPLICAS to what the cluster can give (0 = automatic)", err)
	}
	if err != nil {
		return kcfg, fmt.Errorf("%w: start Kafka or set SECKILL_KAFKA_BROKERS (empty runs an embedded broker)", err)
	}
	logTopics(a.log, topics, a.embedded != nil)
	if a.producer, err = mq.NewProducer(kcfg); err != nil {
		return kcfg, err
	}
	a.closing("kafka producer", a.producer.Close)
	return kcfg, nil
}

// newServer makes the HTTP server of the API, with the metrics and the
// readiness checks of every dependency.
func (a *App) newServer(brokers []string) *http.Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := newMetrics(reg)
	a.producer.Observe = m.observeProduce
	a.Svc.ObserveStage = m.observeStage()
	m.watchConsumer(a.consumer)
	m.watchPublisher(a.tokens)
	a.job.Observe = m.observeCycle
	api := httpapi.New(a.Svc, httpapi.Config{
		AdminToken: a.adminToken,
		Staff:      a.staff,
		SignInFailures: func() httpapi.Limit {
			if a.cfg.SignInFailures.Rate == 0 {
				return httpapi.Limit{Rate: -1} // off
			}
			return a.cfg.SignInFailures
		}(),
		Users:       a.users,
		Registry:    reg,
		Log:         a.log,
		Tally:       a.Svc.Tally(),
		PerIP:       a.cfg.RatePerIP,
		PerUser:     a.cfg.RatePerUser,
		CORSOrigins: a.cfg.CORSOrigins,
		JoinsInFlight: inflight.New(inflight.Config{
			Max:          a.cfg.MaxJoinsInFlight,
			Adaptive:     a.cfg.JoinLimit == joinLimitAdaptive,
			QueueTimeout: a.cfg.JoinQueueTimeout,
			Target:       a.cfg.JoinLatencyTarget,
		}),
		Checks: []httpapi.Check{
			{Name: "redis", Ping: func(ctx context.Context) error { return a.rdb.Ping(ctx).Err() }},
			{Name: "redis eviction policy", Ping: a.eviction.ready},
			{Name: "mysql", Ping: func(ctx context.Context) error { return a.db.PingContext(ctx) }},
			{Name: "kafka", Ping: func(ctx context.Context) error { return dialAny(ctx, brokers) }},
		},
	})
	return &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

// Start listens on the configured address and serves in the background. A
// taken port fails at once.
func (a *App) Start() error {
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s (%w): is another server using the port? set SECKILL_HTTP_ADDR", a.cfg.HTTPAddr, err)
	}
	a.ln = ln
	a.served = make(chan error, 1)
	go func() { a.served <- a.http.Serve(ln) }()
	ctx, cancel := context.WithCancel(context.Background())
	a.bgCancel = cancel
	a.consumer.Start(ctx)
	a.tokens.Start(ctx)
	a.bg.Add(1)
	go func() { defer a.bg.Done(); a.job.Run(ctx) }()
	a.bg.Add(1)
	go func() { defer a.bg.Done(); a.eviction.run(ctx) }()
	if a.userKeys != nil {
		a.watchUserKeys(ctx)
	}
	a.bg.Add(1)
	go func() { defer a.bg.Done(); a.flushJoins(ctx) }()
	a.log.Info("listening", "addr", ln.Addr().String())
	if a.cfg.PprofAddr != "" {
		// The profiler listens on its own address, never on the API's.
		go func() {
			mux := http.NewServeMux()
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
			mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
			srv := &http.Server{Addr: a.cfg.PprofAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
			if err := srv.ListenAndServe(); err != nil {
				a.log.Warn("pprof server", "err", err)
			}
		}()
	}
	return nil
}

// joinsFlush is how often the joins counted in memory are added to Redis.
const joinsFlush = time.Second

// flushJoins adds the joins counted in memory to Redis every joinsFlush
// until ctx ends; a flush that fails keeps its counts for the next one.
func (a *App) flushJoins(ctx context.Context) {
	t := time.NewTicker(joinsFlush)
	defer t.Stop()
	var gate loggate.Gate
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := a.Svc.FlushJoins(ctx); err != nil && ctx.Err() == nil && gate.Open() {
			a.log.Warn("the joins counted could not be added to Redis; kept for the next flush", "err", err)
		}
	}
}

// Addr returns the address the App listens on.
func (a *App) Addr() string { return a.ln.Addr().String() }

// URL returns the base URL of the App.
func (a *App) URL() string {
	_, port, _ := net.SplitHostPort(a.Addr())
	return "http://127.0.0.1:" + port
}

// AdminToken returns the admin bearer token.
func (a *App) AdminToken() string { return a.adminToken }

// Announce prints where the service and its web console are, the admin
// token when it was generated, and with -walkthrough a curl session to try
// it. It returns the error of the write.
func (a *App) Announce(w io.Writer) error {
	var b strings.Builder
	url := a.URL()
	fmt.Fprintf(&b, "seckill is serving on %s\n", url)
	fmt.Fprintf(&b, "web console: %s/console/ (sign in with the admin token)\n", url)
	if a.generatedToken {
		fmt.Fprintf(&b, "admin token (generated; set SECKILL_ADMIN_TOKEN to choose one): %s\n", a.adminToken)
	}
	if !a.cfg.Walkthrough {
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, `
Try it in another terminal:
  export SECKILL=%s TOKEN=%s
  # an activity with 3 slots, open for the next hour
  ID=$(curl -s -X POST $SECKILL/api/v1/admin/activities -H "Authorization: Bearer $TOKEN" \
    -d '{"name":"First lucky draw","stock":3,"perUserLimit":1,"beginAt":"'$(date -u +%%FT%%TZ)'","endAt":"'$(date -u -d '+1 hour' +%%FT%%TZ)'"}' \
    | sed -E 's/^\{"id":([0-9]+).*/\1/'); echo "activity $ID"
  curl -s -X POST $SECKILL/api/v1/admin/activities/$ID/approve -H "Authorization: Bearer $TOKEN"; echo
  curl -s -X POST $SECKILL/api/v1/admin/activities/$ID/open -H "Authorization: Bearer $TOKEN"; echo
  # four users, three slots: three tokens, then sold_out
  for u in alice bob carol dave; do curl -s -X POST $SECKILL/api/v1/activities/$ID/join -d '{"userId":"'$u'"}'; echo; done
  curl -s $SECKILL/api/v1/admin/activities/$ID -H "Authorization: Bearer $TOKEN"; echo
`, url, a.adminToken)
	switch a.cfg.UserAuth {
	case httpapi.UserFromHeader:
		fmt.Fprintf(&b, "  # SECKILL_USER_AUTH=header: each join names its user in -H '%s: alice' instead\n", a.cfg.UserHeader)
	case httpapi.UserFromJWT:
		b.WriteString("  # SECKILL_USER_AUTH=jwt: each join needs -H \"Authorization: Bearer <JWT of the user>\" (README: how to run with a JWKS file)\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Shutdown stops in order: HTTP (in-flight joins finish, each confirmed or
// released), the producer (flushed), the consumer (offsets committed), the
// token publisher (after a last attempt, within ctx, at the valid records
// not yet published), the job, then the connections.
func (a *App) Shutdown(ctx context.Context) error {
	a.shutdownOnce.Do(func() { a.shutdownErr = a.shutdown(ctx) })
	return a.shutdownErr
}

func (a *App) shutdown(ctx context.Context) error {
	var errs []error
	if a.ln != nil {
		if err := a.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http: %w", err))
		}
		if err := <-a.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	// The joins counted since the last flush, the HTTP server stopped.
	if err := a.Svc.FlushJoins(ctx); err != nil {
		a.log.Warn("the joins counted last could not be added to Redis", "err", err)
	}
	if err := a.producer.Close(); err != nil {
		errs = append(errs, fmt.Errorf("kafka producer: %w", err))
	}
	if err := a.consumer.Close(); err != nil {
		errs = append(errs, fmt.Errorf("kafka consumer: %w", err))
	}
	// Not an error of the shutdown: what is left is published by the next
	// instance to hold the lease.
	if err := a.tokens.Stop(ctx); err != nil {
		a.log.Warn("tokens left unpublished at shutdown; the next instance publishes them", "err", err)
	}
	a.Close()
	return errors.Join(errs...)
}

// Close stops the background work and closes every connection, without the
// ordering of Shutdown.
func (a *App) Close() {
	if a.bgCancel != nil {
		a.bgCancel()
		a.bg.Wait()
	}
	for i := len(a.closers) - 1; i >= 0; i-- {
		c := a.closers[i]
		if err := c.close(); err != nil {
			a.log.Warn("closing "+c.what+" failed", "err", err)
		}
	}
	a.closers = nil
}

// logTopics says which topics were created and warns about those that keep
// fewer copies of an event than configured; existing topics are not altered.
func logTopics(log *slog.Logger, topics []mq.TopicState, embedded bool) {
	single := false
	for _, t := range topics {
		if t.Created {
			log.Info("created kafka topic", "topic", t.Name, "replicationFactor", t.ReplicationFactor,
				"minInsyncReplicas", t.MinInsyncReplicas, "partitions", t.Partitions, "liveBrokers", t.Brokers)
		}
		for _, p := range t.Problems {
			log.Warn("kafka topic "+t.Name+": "+p+"; seckill does not alter existing topics", "topic", t.Name)
		}
		single = single || t.Brokers < 2
	}
	if single && !embedded && len(topics) > 0 {
		log.Warn("the kafka cluster has one live broker: each event is kept on that broker only; with three brokers the topics get three replicas",
			"liveBrokers", topics[0].Brokers)
	}
}

func dialAny(ctx context.Context, addrs []string) error {
	var d net.Dialer
	var err error
	for _, addr := range addrs {
		var c net.Conn
		if c, err = d.DialContext(ctx, "tcp", addr); err == nil {
			return c.Close()
		}
	}
	return err
}

// quietRedisLog sends go-redis's own messages to the debug log.
type quietRedisLog struct{ log *slog.Logger }

func (q quietRedisLog) Printf(ctx context.Context, format string, v ...any) {
	q.log.Debug("redis client: " + fmt.Sprintf(format, v...))
}
