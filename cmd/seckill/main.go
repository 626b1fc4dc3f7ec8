// Command seckill is the flash-sale slot-token service: marketing staff open
// lottery activities with a fixed stock of slots, and users join them over
// HTTP to get slot tokens.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], getenv, os.Stdout, os.Stderr))
}

// run starts the server and blocks until a signal stops it. It returns the
// process exit code: 0 after a clean shutdown, 1 when start-up fails, 2 for a
// bad command line.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := LoadConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "seckill: %v\n", err)
		return 2
	}
	log := newLogger(stderr, cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	app, err := NewApp(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "seckill: %v\n", err)
		return 1
	}
	if err := app.Start(); err != nil {
		app.Close()
		fmt.Fprintf(stderr, "seckill: %v\n", err)
		return 1
	}
	app.Announce(stdout)
	<-ctx.Done()
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := app.Shutdown(sctx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
