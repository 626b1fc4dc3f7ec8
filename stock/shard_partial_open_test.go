package stock_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"seckill/stock"
)

// dropShardKeys deletes every key under the hash tag of one shard: as if
// that shard's preheat never landed (its master did not answer during an
// open that failed), or its master forgot it.
func dropShardKeys(t *testing.T, s *stock.Store, k stock.Keys) {
	t.Helper()
	ctx := context.Background()
	rdb := s.Client()
	tag := k.Meta[:strings.LastIndex(k.Meta, "}:")+2]
	keys, err := rdb.Keys(ctx, tag+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) > 0 {
		if err := rdb.Del(ctx, keys...).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// An open of a sharded activity fails after the preheat of some of its
// shards landed (the others' masters did not answer); the activity is
// approved again and its stock raised (checkOpenedOnce lets a raise
// through), then opened: the missing shards are made at the split of the
// stock the kept ones were made at, and raiseShards gives the numbers past
// it to shard 0; every number has one owner, and the sale is exact.
func TestShardedRaiseAfterPartialOpen(t *testing.T) {
	for _, lost := range [][]int{{1, 2}, {0}} {
		t.Run(fmt.Sprint("lost", lost), func(t *testing.T) {
			ctx := context.Background()
			s, a := newShardedStore(t, 9510+int64(lost[0]), 30, 1, 3)
			for _, j := range lost {
				dropShardKeys(t, s, s.ShardKeys(a.ID, 3)[j])
			}
			if err := s.Client().Del(ctx, routeKeyOf(s, a.ID)).Err(); err != nil {
				t.Fatal(err)
			}
			if ok, err := s.Preheated(ctx, a); err != nil || !ok {
				t.Fatalf("preheated: %v %v", ok, err)
			}
			raised := *a
			raised.Stock = 60
			if err := s.Preheat(ctx, &raised); err != nil {
				t.Fatal(err)
			}
			var sl sale
			for u := range 200 {
				sl.join(ctx, t, s, a.ID, fmt.Sprintf("r%d", u), 0)
			}
			sl.check(t, 60, 1)
		})
	}
}
