package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"seckill/loadtest/baselines"
	"seckill/mq"
)

// Pools of the baseline server, the same sizes as the service's: 64 MySQL
// connections, 256 Redis connections (16 kept idle).
const (
	mysqlPool     = 64
	redisPool     = 256
	redisMinIdle  = 16
	redisTimeouts = 2 * time.Second
)

// serve runs the baseline server: the harness starts it as a child process
// (this binary with -serve), so that each design, like the service, runs in
// a process of its own and the load generator in another.
func serve(args []string) int {
	fs := flag.NewFlagSet("compare -serve", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	dsn := fs.String("mysql-dsn", "", "DSN of the baselines' database")
	redisAddr := fs.String("redis", "127.0.0.1:6379", "Redis address")
	prefix := fs.String("prefix", "", "Redis key prefix")
	kafkaDir := fs.String("kafka-dir", "", "data directory of seed 002's embedded broker")
	var o baselines.Options
	fs.IntVar(&o.OptimisticAttempts, "opt-attempts", 0, "tries of (c)")
	fs.DurationVar(&o.OptimisticBackoff, "opt-backoff", 0, "first backoff of (c)")
	fs.IntVar(&o.LockTries, "lock-tries", 0, "SET NX tries of (d)")
	fs.DurationVar(&o.LockRetryDelay, "lock-delay", 0, "delay between tries of (d)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := serveBaselines(*addr, *dsn, *redisAddr, *prefix, *kafkaDir, o, log); err != nil {
		fmt.Fprintln(os.Stderr, "baselines:", err)
		return 1
	}
	return 0
}

func serveBaselines(addr, dsn, redisAddr, prefix, kafkaDir string, o baselines.Options, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		return fmt.Errorf("bad DSN: %w", err)
	}
	cfg.InterpolateParams = true // one round trip per statement
	cfg.ParseTime = true
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }() // at exit
	db.SetMaxOpenConns(mysqlPool)
	db.SetMaxIdleConns(mysqlPool)
	db.SetConnMaxLifetime(30 * time.Minute)
	rdb := redis.NewClient(&redis.Options{
		Addr: redisAddr, PoolSize: redisPool, MinIdleConns: redisMinIdle,
		DialTimeout: redisTimeouts, ReadTimeout: redisTimeouts, WriteTimeout: redisTimeouts,
	})
	defer func() { _ = rdb.Close() }() // at exit

	broker, err := mq.StartEmbedded(kafkaDir, "127.0.0.1:0", mq.DefaultPartitions)
	if err != nil {
		return err
	}
	defer broker.Close()
	srv, err := baselines.New(baselines.Config{
		DB: db, Redis: rdb, Prefix: prefix,
		Brokers: broker.Brokers(), Topic: "lottery_activity_partake", Options: o, Log: log,
	})
	if err != nil {
		return err
	}
	defer srv.Close(context.Background())

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	// The service's server settings.
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	if n := srv.Dropped(); n > 0 {
		log.Warn("seed 002 lost fire-and-forget messages", "count", n)
	}
	return nil
}
