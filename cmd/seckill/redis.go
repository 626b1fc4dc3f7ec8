package main

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// newRedisClient returns the Redis client of cfg: a single-node client for
// one address, a Cluster client for several.
func newRedisClient(cfg Config) redis.UniversalClient {
	opts := &redis.UniversalOptions{
		Addrs:        cfg.RedisAddrs,
		DB:           cfg.RedisDB,
		DialTimeout:  2 * time.Second,
		ReadTimeout:  2 * time.Second,
		WriteTimeout: 2 * time.Second,
		PoolSize:     256,
		MinIdleConns: 16,
	}
	if len(cfg.RedisAddrs) > 1 {
		// The Cluster client retries a failed command itself, on the node
		// its slot map then names; dialling a dead node again and again
		// first only delays that.
		opts.DialerRetries = 1
	}
	rdb := redis.NewUniversalClient(opts)
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		followFailovers(cc, clusterReloadEvery)
	}
	return rdb
}

// clusterReloadEvery is how often at most a Cluster client asks for the
// slot map again while its nodes fail.
const clusterReloadEvery = 100 * time.Millisecond

// followFailovers makes cc load the cluster's slot map again when a node
// fails to answer, at most once every interval.
//
// go-redis reloads its slot map on a MOVED or ASK reply, on a READONLY
// error, and otherwise once it is older than ClusterStateReloadInterval
// (60 s). A master that died never answers MOVED, and the client keeps
// sending the commands of its slots to it (marking a node failing does not
// move a master's slots), so after a failover to its replica every command
// on those slots fails until the map is a minute old. A dial, read or write
// failure on a node is the sign that the map may be stale: the next
// commands, and the Cluster client's own retries of the failing ones, go to
// the master the cluster names now.
func followFailovers(cc *redis.ClusterClient, interval time.Duration) {
	h := &reloadOnFailure{cc: cc, every: interval.Nanoseconds()}
	cc.OnNewNode(func(node *redis.Client) { node.AddHook(h) })
}

// reloadOnFailure is a hook on every node client of a Cluster client.
type reloadOnFailure struct {
	cc    *redis.ClusterClient
	every int64        // nanoseconds between two reloads asked
	last  atomic.Int64 // when the last reload was asked, Unix nanoseconds
}

func (h *reloadOnFailure) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			h.failed(err)
		}
		return c, err
	}
}

func (h *reloadOnFailure) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.failed(err)
		return err
	}
}

func (h *reloadOnFailure) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.failed(err)
		return err
	}
}

// failed asks for the slot map again when err says the node did not
// answer: not for a reply of Redis (MOVED, NOSCRIPT, a script's error, a
// missing key), nor for a caller that gave up or a client being closed.
func (h *reloadOnFailure) failed(err error) {
	var reply redis.Error
	if err == nil || errors.As(err, &reply) || errors.Is(err, context.Canceled) || errors.Is(err, redis.ErrClosed) {
		return
	}
	now := time.Now().UnixNano()
	last := h.last.Load()
	if now-last < h.every || !h.last.CompareAndSwap(last, now) {
		return
	}
	h.cc.ReloadState(context.Background())
}
