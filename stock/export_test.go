package stock

import (
	"context"
	"strconv"

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
