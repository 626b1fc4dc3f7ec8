package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"seckill/stock"
)

// defaultEvictionCheckEvery is how often the running server reads Redis's
// maxmemory-policy again.
const defaultEvictionCheckEvery = 30 * time.Second

// errEvictionPolicy is what /readyz reports while Redis may evict keys.
var errEvictionPolicy = errors.New("redis maxmemory-policy may evict keys")

// evictionWatch reads Redis's maxmemory-policy every so often, so that a
// policy changed while the server runs (CONFIG SET, a failover to a replica
// configured otherwise) is seen: it logs an error once when Redis starts to
// evict and makes the readiness check fail while it does, unless eviction
// is allowed, in which case it only warns.
type evictionWatch struct {
	check func(context.Context) error // stock.CheckEviction on the server's client
	allow bool
	every time.Duration
	log   *slog.Logger

	mu    sync.Mutex
	state error // the last *stock.EvictionError seen; nil while safe
}

// startEviction checks the policy at start: an evicting policy fails the
// start unless allow, and is warned about when allowed.
func startEviction(ctx context.Context, check func(context.Context) error, allow bool, every time.Duration, log *slog.Logger) (*evictionWatch, error) {
	if every <= 0 {
		every = defaultEvictionCheckEvery
	}
	w := &evictionWatch{check: check, allow: allow, every: every, log: log}
	err := w.check(ctx)
	switch {
	case err == nil:
	case !allow && stock.IsEviction(err):
		return nil, fmt.Errorf("%w: set maxmemory-policy noeviction (in redis.conf, or CONFIG SET maxmemory-policy noeviction), or set SECKILL_REDIS_ALLOW_EVICTION=true to start anyway", err)
	case !allow:
		return nil, fmt.Errorf("%w: cannot tell whether Redis may evict the activities' keys; set SECKILL_REDIS_ALLOW_EVICTION=true to start anyway", err)
	case stock.IsEviction(err):
		w.state = err
		log.Warn("redis may evict the activities' keys; starting anyway because SECKILL_REDIS_ALLOW_EVICTION is set", "err", err)
	default:
		log.Warn("cannot read redis's maxmemory-policy; starting anyway because SECKILL_REDIS_ALLOW_EVICTION is set", "err", err)
	}
	return w, nil
}

// run checks the policy every w.every until ctx ends.
func (w *evictionWatch) run(ctx context.Context) {
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			w.update(w.check(cctx))
			cancel()
		}
	}
}

// update takes the result of one check. A Redis that does not answer leaves
// the state as it was: the readiness check of redis itself reports that.
func (w *evictionWatch) update(err error) {
	if err != nil && !stock.IsEviction(err) {
		w.log.Debug("eviction policy check", "err", err)
		return
	}
	w.mu.Lock()
	prev := w.state
	w.state = err
	w.mu.Unlock()
	switch {
	case err != nil && (prev == nil || prev.Error() != err.Error()):
		if w.allow {
			w.log.Warn("redis may now evict the activities' keys; serving on because SECKILL_REDIS_ALLOW_EVICTION is set", "err", err)
		} else {
			w.log.Error("redis may now evict the activities' keys: not ready until maxmemory-policy is noeviction again", "err", err)
		}
	case err == nil && prev != nil:
		w.log.Info("redis maxmemory-policy is noeviction again")
	}
}

// ready is the readiness check: it fails while Redis may evict keys and
// eviction is not allowed.
func (w *evictionWatch) ready(context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != nil && !w.allow {
		return fmt.Errorf("%w: %v", errEvictionPolicy, w.state)
	}
	return nil
}
