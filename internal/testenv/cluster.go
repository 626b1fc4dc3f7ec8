package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster starts a Redis Cluster of three masters on free local ports
// (redis-server --cluster-enabled yes, then redis-cli --cluster create) and
// returns its addresses; it is stopped when the test ends.
func Cluster(t testing.TB) []string {
	t.Helper()
	return startCluster(t, 0).Addrs()
}

// ReplicatedCluster is a Redis Cluster of three masters with one replica
// each, every node a RedisServer of the test's own.
type ReplicatedCluster struct {
	t     testing.TB
	Nodes []*RedisServer
}

// ClusterWithReplicas starts a Redis Cluster of three masters and three
// replicas and waits until every replica is in sync with its master; it is
// stopped when the test ends.
func ClusterWithReplicas(t testing.TB) *ReplicatedCluster {
	t.Helper()
	c := startCluster(t, 1)
	for _, n := range c.Nodes {
		rdb := redis.NewClient(&redis.Options{Addr: n.Addr()})
		deadline := time.Now().Add(20 * time.Second)
		for {
			info, _ := rdb.Info(context.Background(), "replication").Result()
			if strings.Contains(info, "role:master") && strings.Contains(info, "connected_slaves:1") ||
				strings.Contains(info, "role:slave") && strings.Contains(info, "master_link_status:up") &&
					strings.Contains(info, "master_sync_in_progress:0") {
				break
			}
			if time.Now().After(deadline) {
				closeLogged(t, "redis", rdb)
				t.Fatalf("testenv: cluster node %s not in sync:\n%s\n%s", n.Addr(), info, c.logs())
			}
			time.Sleep(50 * time.Millisecond)
		}
		closeLogged(t, "redis", rdb)
	}
	return c
}

// logs returns the end of every node's log, for a failure message.
func (c *ReplicatedCluster) logs() string {
	var b strings.Builder
	for _, n := range c.Nodes {
		log, _ := os.ReadFile(filepath.Join(n.Dir(), "redis.log"))
		lines := strings.Split(strings.TrimSpace(string(log)), "\n")
		fmt.Fprintf(&b, "--- %s, end of redis.log:\n%s\n", n, strings.Join(lines[max(0, len(lines)-15):], "\n"))
	}
	return b.String()
}

// Addrs returns the addresses of every node.
func (c *ReplicatedCluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr()
	}
	return out
}

// Node returns the node listening on addr.
func (c *ReplicatedCluster) Node(addr string) *RedisServer {
	c.t.Helper()
	for _, n := range c.Nodes {
		if n.Addr() == addr {
			return n
		}
	}
	c.t.Fatalf("testenv: no cluster node at %s", addr)
	return nil
}

// ReplicaOf returns the replica of the master at addr, as the master itself
// sees it (CLUSTER NODES).
func (c *ReplicatedCluster) ReplicaOf(addr string) *RedisServer {
	c.t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer closeLogged(c.t, "redis", rdb)
	ctx := context.Background()
	id, err := rdb.Do(ctx, "CLUSTER", "MYID").Text()
	if err != nil {
		c.t.Fatalf("testenv: CLUSTER MYID on %s: %v", addr, err)
	}
	nodes, err := rdb.ClusterNodes(ctx).Result()
	if err != nil {
		c.t.Fatalf("testenv: CLUSTER NODES on %s: %v", addr, err)
	}
	// <id> <ip:port@cport> <flags> <master id> ...
	for _, line := range strings.Split(nodes, "\n") {
		f := strings.Fields(line)
		if len(f) > 3 && strings.Contains(f[2], "slave") && f[3] == id {
			hostPort, _, _ := strings.Cut(f[1], "@")
			return c.Node(hostPort)
		}
	}
	c.t.Fatalf("testenv: %s has no replica:\n%s", addr, nodes)
	return nil
}

// startCluster starts three masters with replicas replicas each and creates
// the cluster.
func startCluster(t testing.TB, replicas int) *ReplicatedCluster {
	t.Helper()
	c := &ReplicatedCluster{t: t}
	for range 3 * (1 + replicas) {
		c.Nodes = append(c.Nodes, StartRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "5000"))
	}
	addrs := c.Addrs()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("testenv: redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, addr := range addrs {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		deadline := time.Now().Add(20 * time.Second)
		for {
			info, _ := rdb.ClusterInfo(context.Background()).Result()
			if strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				closeLogged(t, "redis", rdb)
				t.Fatalf("testenv: cluster node %s not ok: %s", addr, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		closeLogged(t, "redis", rdb)
	}
	return c
}

// ClusterClient returns a client of a three-master cluster of the test's own.
func ClusterClient(t testing.TB) *redis.ClusterClient {
	t.Helper()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: Cluster(t), PoolSize: 128})
	closeAtEnd(t, "redis cluster", rdb)
	if err := rdb.ForEachShard(context.Background(), func(ctx context.Context, c *redis.Client) error {
		return c.Ping(ctx).Err()
	}); err != nil {
		t.Fatal(err)
	}
	return rdb
}

// Keys returns the keys matching pattern on every master of rdb.
func Keys(t testing.TB, rdb redis.UniversalClient, pattern string) []string {
	t.Helper()
	ctx := context.Background()
	var keys []string
	collect := func(c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		return iter.Err()
	}
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		var mu = make(chan struct{}, 1)
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			mu <- struct{}{}
			defer func() { <-mu }()
			return collect(c)
		})
	} else {
		err = collect(rdb)
	}
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// MasterOf returns the address of the master that serves key.
func MasterOf(t testing.TB, rdb *redis.ClusterClient, key string) string {
	t.Helper()
	ctx := context.Background()
	slot, err := rdb.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	shards, err := rdb.ClusterShards(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range shards {
		if !slices.ContainsFunc(sh.Slots, func(r redis.SlotRange) bool { return r.Start <= slot && slot <= r.End }) {
			continue
		}
		for _, n := range sh.Nodes {
			if n.Role == "master" && n.Health == "online" {
				return net.JoinHostPort(n.IP, strconv.FormatInt(n.Port, 10))
			}
		}
	}
	t.Fatalf("no master serves slot %d", slot)
	return ""
}
