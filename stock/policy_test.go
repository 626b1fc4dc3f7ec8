package stock_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"seckill/internal/testenv"
	"seckill/stock"
)

func clientOf(t *testing.T, addr string) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func TestCheckEviction(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		policy string
		safe   bool
	}{
		{"noeviction", true},
		{"allkeys-lru", false},
		{"volatile-lru", false},
		{"volatile-ttl", false},
	} {
		t.Run(tt.policy, func(t *testing.T) {
			t.Parallel()
			srv := testenv.StartRedis(t, "--maxmemory", "64mb", "--maxmemory-policy", tt.policy)
			rdb := clientOf(t, srv.Addr())
			err := stock.CheckEviction(context.Background(), rdb)
			if tt.safe {
				if err != nil {
					t.Fatalf("%s: %v, want nil", tt.policy, err)
				}
				return
			}
			var ee *stock.EvictionError
			if !errors.As(err, &ee) || !stock.IsEviction(err) {
				t.Fatalf("%s: %v, want an *EvictionError", tt.policy, err)
			}
			if len(ee.Nodes) != 1 || ee.Nodes[0] != (stock.NodePolicy{Node: srv.Addr(), Policy: tt.policy}) {
				t.Errorf("nodes %+v, want %s with %s", ee.Nodes, srv.Addr(), tt.policy)
			}
			for _, w := range []string{srv.Addr(), "maxmemory-policy " + tt.policy, "noeviction"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// A policy changed at run time is seen by the next check, through the
// Store as the periodic job calls it.
func TestCheckEvictionSeesChange(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t)
	rdb := clientOf(t, srv.Addr())
	s := stock.New(rdb, stock.Options{})
	t.Cleanup(s.Stop)
	ctx := context.Background()
	if err := s.CheckEviction(ctx); err != nil {
		t.Fatalf("default policy: %v, want nil", err)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory-policy", "allkeys-lfu").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckEviction(ctx); !stock.IsEviction(err) || !strings.Contains(err.Error(), "allkeys-lfu") {
		t.Fatalf("after CONFIG SET allkeys-lfu: %v, want an eviction error naming it", err)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckEviction(ctx); err != nil {
		t.Fatalf("back to noeviction: %v", err)
	}
}

// On a cluster every master is asked, and the one that evicts is named.
func TestCheckEvictionCluster(t *testing.T) {
	t.Parallel()
	rdb := testenv.ClusterClient(t)
	ctx := context.Background()
	if err := stock.CheckEviction(ctx, rdb); err != nil {
		t.Fatalf("cluster, default policy: %v", err)
	}
	nodes, err := stock.EvictionPolicies(ctx, rdb)
	if err != nil || len(nodes) != 3 {
		t.Fatalf("policies %+v, %v; want three masters", nodes, err)
	}
	bad := nodes[1].Node
	if err := clientOf(t, bad).ConfigSet(ctx, "maxmemory-policy", "volatile-lfu").Err(); err != nil {
		t.Fatal(err)
	}
	err = stock.CheckEviction(ctx, rdb)
	var ee *stock.EvictionError
	if !errors.As(err, &ee) || len(ee.Nodes) != 1 || ee.Nodes[0] != (stock.NodePolicy{Node: bad, Policy: "volatile-lfu"}) {
		t.Fatalf("after one master went volatile-lfu: %v, want it alone named", err)
	}
}

func TestCheckEvictionRedisDown(t *testing.T) {
	t.Parallel()
	err := stock.CheckEviction(context.Background(), testenv.DeadRedis(t))
	if err == nil || stock.IsEviction(err) {
		t.Fatalf("dead Redis: %v, want an error that is not an eviction error", err)
	}
}
