package stock

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// SafePolicy is the one maxmemory-policy under which Redis never removes a
// key of an activity to make room: a full Redis refuses writes instead, and
// the joins answer 503 with nothing taken.
//
// Every other policy can evict: the volatile-* ones take keys with a TTL,
// which the slot locks have (a lock gone while its claim is in flight lets a
// second claim take the same slot), as do the rebuild locks; the allkeys-*
// ones take any key, counters, issued bitmaps and per-user counts included
// (a slot sold twice, a user over the limit, or a lost activity).
const SafePolicy = "noeviction"

// Evicts tells whether a maxmemory-policy may evict keys: every policy but
// noeviction, including ones this code does not know yet.
func Evicts(policy string) bool { return policy != SafePolicy }

// NodePolicy is the maxmemory-policy of one Redis server; Policy is empty
// when the server does not report it.
type NodePolicy struct {
	Node, Policy string
}

// EvictionError names the Redis servers whose maxmemory-policy may evict an
// activity's keys.
type EvictionError struct {
	Nodes []NodePolicy // sorted by address
}

func (e *EvictionError) Error() string {
	var parts []string
	for _, n := range e.Nodes {
		if n.Policy == "" {
			parts = append(parts, fmt.Sprintf("redis at %s does not report maxmemory_policy in INFO memory", n.Node))
		} else {
			parts = append(parts, fmt.Sprintf("redis at %s has maxmemory-policy %s", n.Node, n.Policy))
		}
	}
	return strings.Join(parts, "; ") + ", which can evict the activities' keys (only " + SafePolicy + " is safe)"
}

// EvictionPolicies reads the maxmemory-policy of rdb, or of every master of
// a Redis Cluster (or shard of a Ring), from INFO memory: unlike CONFIG GET,
// it answers where managed Redis services rename or disable CONFIG.
func EvictionPolicies(ctx context.Context, rdb redis.UniversalClient) ([]NodePolicy, error) {
	var (
		mu  sync.Mutex
		out []NodePolicy
	)
	read := func(ctx context.Context, c *redis.Client) error {
		info, err := c.Info(ctx, "memory").Result()
		if err != nil {
			return fmt.Errorf("redis at %s: INFO memory: %w", c.Options().Addr, err)
		}
		mu.Lock()
		out = append(out, NodePolicy{Node: c.Options().Addr, Policy: infoField(info, "maxmemory_policy")})
		mu.Unlock()
		return nil
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, read)
	case *redis.Ring:
		err = c.ForEachShard(ctx, read)
	case *redis.Client:
		err = read(ctx, c)
	default:
		return nil, fmt.Errorf("redis: cannot read the eviction policy of a %T", rdb)
	}
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b NodePolicy) int { return strings.Compare(a.Node, b.Node) })
	return out, nil
}

// CheckEviction returns an *EvictionError naming every server of rdb (every
// master of a cluster) whose maxmemory-policy may evict keys, nil when all
// of them are noeviction, or another error when a server could not be asked.
func CheckEviction(ctx context.Context, rdb redis.UniversalClient) error {
	nodes, err := EvictionPolicies(ctx, rdb)
	if err != nil {
		return err
	}
	var bad []NodePolicy
	for _, n := range nodes {
		if Evicts(n.Policy) {
			bad = append(bad, n)
		}
	}
	if len(bad) > 0 {
		return &EvictionError{Nodes: bad}
	}
	return nil
}

// CheckEviction checks the eviction policy of the Store's Redis, as the
// package's CheckEviction does; a periodic job calls it to see a policy
// changed at run time.
func (s *Store) CheckEviction(ctx context.Context) error { return CheckEviction(ctx, s.rdb) }

// IsEviction tells whether err is (or wraps) an *EvictionError.
func IsEviction(err error) bool {
	var e *EvictionError
	return errors.As(err, &e)
}

// infoField returns the value of field in the text of INFO, or "".
func infoField(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}
