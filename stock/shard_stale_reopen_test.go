package stock_test

import (
	"context"
	"fmt"
	"testing"
)

// An open of a 3-shard activity of 30 lands on every shard but fails (its
// reply lost): the activity is approved again, its shards kept. The master
// of shard 2 then fails over to a replica that had every write: its state
// is intact but stamped by another master history, so it is not live. The
// stock is raised to 60 and the activity opened: shard 2, cleared, is made
// again at the split the shards were made at (30, kept as "made"), and the
// raise gives 31-60 to shard 0: every number has one owner.
func TestShardedRaiseAfterFailedOpenWithAStaleShard(t *testing.T) {
	ctx := context.Background()
	s, a := newShardedStore(t, 9530, 30, 1, 3)
	m := s.ShardKeys(a.ID, 3)[2].Meta
	if err := s.Client().HSet(ctx, m, "replid", "0000000000000000000000000000000000000000/2").Err(); err != nil {
		t.Fatal(err)
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
}

// An open of a 3-shard activity of 30 lands, its stock is raised to 60 and
// the open again (the raise given to shard 0, total 60 there) fails as
// well, its reply lost. The master of some shards then forgets them
// (restart without persistence). The next open: with shards 1 and 2 lost,
// madeAt takes shard 0's total (60, the raise's, not the 30 it was made
// at) and makes them at the split of 60 (21-40, 41-60), which shard 0 owns
// in part (31-60): numbers twice, 11-20 by nobody; with shard 1 lost, the
// kept totals disagree (60, 30) and the activity can never open again.
func TestShardedReopenAfterRaisedFailedOpenLostShards(t *testing.T) {
	for _, lost := range [][]int{{1, 2}, {1}} {
		t.Run(fmt.Sprint("lost", lost), func(t *testing.T) {
			ctx := context.Background()
			s, a := newShardedStore(t, 9540+int64(len(lost)), 30, 1, 3)
			raised := *a
			raised.Stock = 60
			if err := s.Preheat(ctx, &raised); err != nil {
				t.Fatal(err)
			}
			for _, j := range lost {
				dropShardKeys(t, s, s.ShardKeys(a.ID, 3)[j])
			}
			if err := s.Preheat(ctx, &raised); err != nil {
				t.Fatalf("the open again: %v", err)
			}
			var sl sale
			for u := range 200 {
				sl.join(ctx, t, s, a.ID, fmt.Sprintf("r%d", u), 0)
			}
			sl.check(t, 60, 1)
		})
	}
}
