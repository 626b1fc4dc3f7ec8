package stock

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Client returns the Redis client of the store.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// IdemKey returns the key of the idempotency bucket of userID (see UserKey).
func (k Keys) IdemKey(userID string, buckets int64) string {
	return k.Idem + strconv.FormatInt(bucketOf(userID, buckets), 10)
}

// UserField is the field that stands for userID in its bucket.
func UserField(userID string) string { return userField(userID) }

// AutoPipelined sends the store's join scripts through go-redis's own
// auto-pipelining instead of the batcher, for BenchmarkBatcherVsAutoPipeline.
func (s *Store) AutoPipelined(ap *redis.AutoPipeliner) {
	s.run = func(ctx context.Context, sc *redis.Script, keys []string, args ...any) *redis.Cmd {
		return sc.Run(ctx, ap, keys, args...)
	}
}

// KeySlot is the Redis Cluster hash slot of a key's hash tag.
func KeySlot(key string) uint16 {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return keySlot(key)
}

// Carve takes up to n free numbers out of shard from for shard to, as the
// first half of a move, and returns how many it took: a mover that dies
// before it gives them.
func (s *Store) Carve(ctx context.Context, id int64, from, to int, n int64) (int64, error) {
	l, err := s.layoutOf(ctx, id)
	if err != nil {
		return 0, err
	}
	k := l.shards[from].k
	res, err := carveScript.Run(ctx, s.rdb, []string{k.Meta, k.Used, k.Slots, k.Moving, k.Owns, k.State}, n, "test-move", to, maxRuns).Slice()
	if err != nil || len(res) != 6 {
		return 0, fmt.Errorf("carve: %v %v", res, err)
	}
	got, _ := res[2].(int64)
	return got, nil
}

// SetMoveGrace sets how old a move must be for Reap to finish it.
func SetMoveGrace(d time.Duration) func() {
	old := moveGrace
	moveGrace = d
	return func() { moveGrace = old }
}

// CarveAs is Carve with the move's id given.
func (s *Store) CarveAs(ctx context.Context, id int64, moveID string, from, to int, n int64) (int64, error) {
	l, err := s.layoutOf(ctx, id)
	if err != nil {
		return 0, err
	}
	k := l.shards[from].k
	res, err := carveScript.Run(ctx, s.rdb, []string{k.Meta, k.Used, k.Slots, k.Moving, k.Owns, k.State}, n, moveID, to, maxRuns).Slice()
	if err != nil || len(res) != 6 {
		return 0, fmt.Errorf("carve: %v %v", res, err)
	}
	got, _ := res[2].(int64)
	return got, nil
}

// Grant raises the stock of a sharded activity from total, as a raise that
// read total does.
func (s *Store) Grant(ctx context.Context, id, epoch, total, stock int64) error {
	l, err := s.layoutOf(ctx, id)
	if err != nil {
		return err
	}
	return s.grant(ctx, l, epoch, total, stock)
}

// Deliver receives the moves in shard from's journal on the shards they go
// to, and leaves them in the journal: a mover that dies right after.
func (s *Store) Deliver(ctx context.Context, id int64, from int) error {
	l, err := s.layoutOf(ctx, id)
	if err != nil {
		return err
	}
	moves, err := s.rdb.HGetAll(ctx, l.shards[from].k.Moving).Result()
	if err != nil {
		return err
	}
	for mid, v := range moves {
		m, _ := parseMove(v)
		if r, err := s.receive(ctx, l.shards[m.to].k, mid, m.epoch, "", m.seq, strconv.Itoa(from), m.carve, m.runs); err != nil || r != 1 {
			return fmt.Errorf("receive %s: %d %v", mid, r, err)
		}
	}
	return nil
}

// Receive runs receive.lua on shard to of activity id for a move from shard
// from, as a mover or the job does; the move's carve number is the one in
// the giver's journal, 0 when it is not there (a mover keeps it in memory:
// ReceiveCarved).
func (s *Store) Receive(ctx context.Context, id int64, to, from int, moveID string, epoch, seq int64, runs string) (int64, error) {
	l, err := s.layoutOf(ctx, id)
	if err != nil {
		return 0, err
	}
	m, _ := parseMove(s.rdb.HGet(ctx, l.shards[from].k.Moving, moveID).Val())
	return s.receive(ctx, l.shards[to].k, moveID, epoch, "", seq, strconv.Itoa(from), m.carve, runs)
}

// ReceiveCarved is Receive with the move's carve number given.
func (s *Store) ReceiveCarved(ctx context.Context, id int64, to, from int, moveID string, epoch, seq, carve int64, runs string) (int64, error) {
	l, err := s.layoutOf(ctx, id)
	if err != nil {
		return 0, err
	}
	return s.receive(ctx, l.shards[to].k, moveID, epoch, "", seq, strconv.Itoa(from), carve, runs)
}

// ParseMove reads a move of a giver's journal: the shard it goes to, the
// giver's epoch, claim sequence and carve number, and its runs.
func ParseMove(v string) (to int, epoch, seq, carve int64, runs string, ok bool) {
	m, ok := parseMove(v)
	return m.to, m.epoch, m.seq, m.carve, m.runs, ok
}
