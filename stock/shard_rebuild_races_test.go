package stock_test

// Shards rebuilt alone while stale states, late journals and other
// instances race with them.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"seckill/activity"
	"seckill/stock"
)

// snapshotShard returns the dump of every key of shard j of a, and the
// function that brings the shard back from it as a restart from an older
// RDB snapshot does: its keys as they were, its meta's replication id no
// longer the master's.
func snapshotShard(t *testing.T, s *stock.Store, a *activity.Activity, j int) func() {
	t.Helper()
	ctx := context.Background()
	meta := s.ShardKeys(a.ID, a.Shards)[j].Meta
	prefix := strings.TrimSuffix(meta, "meta")
	keys, err := s.Client().Keys(ctx, prefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys of shard %d: %v %v", j, keys, err)
	}
	dumps := map[string]string{}
	for _, k := range keys {
		d, err := s.Client().Dump(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		dumps[k] = d
	}
	return func() {
		t.Helper()
		now, _ := s.Client().Keys(ctx, prefix+"*").Result()
		if len(now) > 0 {
			if err := s.Client().Del(ctx, now...).Err(); err != nil {
				t.Fatal(err)
			}
		}
		for k, d := range dumps {
			if err := s.Client().Restore(ctx, k, 0, d).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Client().HSet(ctx, meta, "replid", "stale").Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestShardedStaleGiverJournalRedeliversAMoveToAShardRebuiltAlone: shard 1
// carves 2 numbers for shard 0 (move m1) and an RDB snapshot of shard 1 is
// taken; shard 0 receives m1 and the mover drops it from shard 1's
// journal. Shard 0 sells all it owns, the 2 numbers among them, and is
// lost and rebuilt alone: its set of moves received starts empty. Then
// shard 1 comes back from the snapshot, its journal holding m1 again. The
// job's Reap finishes the moves of every journal: m1's giver epoch is the
// one shard 0 knows shard 1 by (nothing rebuilt shard 1), and m1 is not in
// shard 0's moves received, so shard 0 takes the 2 numbers again, as free,
// though they are issued on it. They must not be sold twice.
func TestShardedStaleGiverJournalRedeliversAMoveToAShardRebuiltAlone(t *testing.T) {
	ctx := context.Background()
	const stockN = 12
	s, a := newShardedStore(t, 9801, stockN, 1, 2)
	defer stock.SetMoveGrace(0)()
	if n, err := s.CarveAs(ctx, a.ID, "m1", 1, 0, 2); err != nil || n != 2 {
		t.Fatalf("carve: %d %v", n, err)
	}
	restore := snapshotShard(t, s, a, 1)
	if err := s.Deliver(ctx, a.ID, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Client().HDel(ctx, s.ShardKeys(a.ID, 2)[1].Moving, "m1").Err(); err != nil {
		t.Fatal(err)
	}
	// Shard 0 sells its 6 and the 2 it received, with no more moves.
	var sl sale
	for _, u := range usersOf(8, 0, 2) {
		sl.join(ctx, t, s, a.ID, u, 0)
	}
	if len(sl.won) != 8 {
		t.Fatalf("shard 0 sold %d, want 8", len(sl.won))
	}
	loseShard(t, s, a, 0)
	r, held := beginShardRebuild(t, s, a)
	if r.Shard() != 0 {
		t.Fatalf("rebuilding shard %d, want 0", r.Shard())
	}
	a = finishShardRebuild(t, s, a, r, held, participations(a.ID, sl.won))
	// Shard 1 back from the snapshot; the job runs before it is rebuilt.
	restore()
	if _, err := s.Reap(ctx, a.ID, 1000); err != nil {
		t.Fatal(err)
	}
	// Shard 0 owns nothing free: a join of its users finds it sold out
	// (shard 1 is not live, so nothing moves), and must not get a number
	// issued already.
	for _, u := range usersOf(11, 0, 2)[8:] {
		sl.join(ctx, t, s, a.ID, u, 0)
	}
	for slot, n := range sl.perSlot {
		if n > 1 {
			t.Errorf("slot %d issued %d times", slot, n)
		}
	}
	if len(sl.won) != 8 {
		t.Errorf("%d tokens issued on shard 0, want 8", len(sl.won))
	}
}

// TestShardedFirstShardLostWithARaiseOnlyInMySQL: shard 0, which keeps the
// activity's stock, is lost; a raise from 30 to 45 reaches MySQL but not
// Redis. Shard 0 is rebuilt alone with MySQL's 45, sells, and a later raise
// to 60 is given once; the whole stock sells, none twice.
func TestShardedFirstShardLostWithARaiseOnlyInMySQL(t *testing.T) {
	ctx := context.Background()
	defer stock.SetMoveGrace(0)()
	s, a := newShardedStore(t, 9802, 30, 1, 3)
	var sl sale
	for u := range 12 {
		sl.join(ctx, t, s, a.ID, fmt.Sprintf("r%d", u), 0)
	}
	loseShard(t, s, a, 0)
	if err := s.SetStock(ctx, a.ID, 45); !errors.Is(err, activity.ErrNoState) {
		t.Fatalf("raise with shard 0 lost: %v, want no state", err)
	}
	a.Stock = 45 // MySQL has it
	a = rebuildAlone(t, s, a, sl.won)
	checkBits(t, s, a, 45)
	if err := s.SetStock(ctx, a.ID, 45); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStock(ctx, a.ID, 60); err != nil {
		t.Fatal(err)
	}
	a.Stock = 60
	checkBits(t, s, a, 60)
	for _, u := range usersOf(20, 0, 3) {
		sl.join(ctx, t, s, a.ID, u, 0)
	}
	loseShard(t, s, a, 0)
	a = rebuildAlone(t, s, a, sl.won)
	checkBits(t, s, a, 60)
	for u := range 120 {
		sl.join(ctx, t, s, a.ID, fmt.Sprintf("z%d", u), 0)
	}
	sl.check(t, 60, 1)
	checkBits(t, s, a, 60)
}

// TestShardedLateMoverGivesAgainAMoveToAShardRebuiltAloneTwice: a mover
// carves 2 numbers of shard 1 for shard 0 (move m1) and stalls before the
// receive. Shard 0 is lost and rebuilt alone: m1, on its way to it, is
// counted received (in its set of moves received) and dropped from shard
// 1's journal. Shard 0 sells all it owns, the 2 numbers among them, and is
// lost and rebuilt alone again: its set of moves received starts empty.
// The stalled mover then receives m1 on shard 0, from the epoch shard 0
// still knows shard 1 by: the 2 numbers, issued, must not be taken as free
// again.
func TestShardedLateMoverGivesAgainAMoveToAShardRebuiltAloneTwice(t *testing.T) {
	ctx := context.Background()
	const stockN = 12
	s, a := newShardedStore(t, 9803, stockN, 1, 2)
	if n, err := s.CarveAs(ctx, a.ID, "m1", 1, 0, 2); err != nil || n != 2 {
		t.Fatalf("carve: %d %v", n, err)
	}
	raw := s.Client().HGet(ctx, s.ShardKeys(a.ID, 2)[1].Moving, "m1").Val()
	f := strings.SplitN(raw, ":", 5)
	loseShard(t, s, a, 0)
	r, held := beginShardRebuild(t, s, a)
	a = finishShardRebuild(t, s, a, r, held, nil)
	if n, _ := s.Client().HLen(ctx, s.ShardKeys(a.ID, 2)[1].Moving).Result(); n != 0 {
		t.Fatalf("shard 1's journal keeps %d moves after the rebuild, want 0", n)
	}
	var sl sale
	for _, u := range usersOf(8, 0, 2) {
		sl.join(ctx, t, s, a.ID, u, 0)
	}
	if len(sl.won) != 8 {
		t.Fatalf("shard 0 sold %d, want 8", len(sl.won))
	}
	loseShard(t, s, a, 0)
	a = rebuildAlone(t, s, a, sl.won)
	epoch, _ := strconv.ParseInt(f[1], 10, 64)
	seq, _ := strconv.ParseInt(f[3], 10, 64)
	got, err := s.Receive(ctx, a.ID, 0, 1, "m1", epoch, seq, f[4])
	if err != nil {
		t.Fatal(err)
	}
	for u := range 30 {
		sl.join(ctx, t, s, a.ID, fmt.Sprintf("late%d", u), 0)
	}
	if t.Failed() {
		return
	}
	sl.check(t, stockN, 1)
	if t.Failed() {
		t.Logf("the late receive of m1 answered %d", got)
	}
}

// TestShardedFirstShardBackFromASnapshotBeforeARaise: shard 0 carves 3
// numbers for shard 1 (m0), and an RDB snapshot of shard 0 is taken; m0 is
// received, the stock raised from 30 to 45 (MySQL, then the grant on shard
// 0), and shard 1's users take numbers of the raise. Shard 0 comes back
// from the snapshot (stock 30, m0 in its journal); the job finishes the
// moves, and shard 0 is rebuilt alone with MySQL's 45. A later raise to 60
// is given once, and the whole stock sells, none twice.
func TestShardedFirstShardBackFromASnapshotBeforeARaise(t *testing.T) {
	ctx := context.Background()
	defer stock.SetMoveGrace(0)()
	s, a := newShardedStore(t, 9804, 30, 1, 3)
	if n, err := s.CarveAs(ctx, a.ID, "m0", 0, 1, 3); err != nil || n != 3 {
		t.Fatalf("carve: %d %v", n, err)
	}
	restore := snapshotShard(t, s, a, 0)
	if err := s.Deliver(ctx, a.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Client().HDel(ctx, s.ShardKeys(a.ID, 3)[0].Moving, "m0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStock(ctx, a.ID, 45); err != nil {
		t.Fatal(err)
	}
	a.Stock = 45
	var sl sale
	for _, u := range usersOf(20, 1, 3) {
		sl.join(ctx, t, s, a.ID, u, 0)
	}
	restore()
	if _, err := s.Reap(ctx, a.ID, 1000); err != nil {
		t.Fatal(err)
	}
	r, held := beginShardRebuild(t, s, a)
	if r.Shard() != 0 {
		t.Fatalf("rebuilding shard %d, want 0", r.Shard())
	}
	a = finishShardRebuild(t, s, a, r, held, participations(a.ID, sl.won))
	checkBits(t, s, a, 45)
	if err := s.SetStock(ctx, a.ID, 60); err != nil {
		t.Fatal(err)
	}
	a.Stock = 60
	checkBits(t, s, a, 60)
	for u := range 120 {
		sl.join(ctx, t, s, a.ID, fmt.Sprintf("z%d", u), 0)
	}
	sl.check(t, 60, 1)
	checkBits(t, s, a, 60)
}

// TestShardedStaleShardJournalFinishedBeforeItsRebuild: shard 1 carves 2
// numbers for shard 0 (m1) and 2 for shard 2 (m2), and an RDB snapshot of
// shard 1 is taken; shard 0 receives m1 and sells it, m2 stays on its way
// (the real journal keeps it). Shard 1 comes back from the snapshot; the
// job finishes its journal before the rebuild (m1 was received: taken
// once; m2 is given now), then shard 1 is rebuilt alone. The whole stock
// sells, none twice.
func TestShardedStaleShardJournalFinishedBeforeItsRebuild(t *testing.T) {
	ctx := context.Background()
	defer stock.SetMoveGrace(0)()
	const stockN = 30
	s, a := newShardedStore(t, 9805, stockN, 1, 3)
	if n, err := s.CarveAs(ctx, a.ID, "m1", 1, 0, 2); err != nil || n != 2 {
		t.Fatalf("carve: %d %v", n, err)
	}
	if n, err := s.CarveAs(ctx, a.ID, "m2", 1, 2, 2); err != nil || n != 2 {
		t.Fatalf("carve: %d %v", n, err)
	}
	restore := snapshotShard(t, s, a, 1)
	raw := s.Client().HGet(ctx, s.ShardKeys(a.ID, 3)[1].Moving, "m1").Val()
	f := strings.SplitN(raw, ":", 5)
	seq, _ := strconv.ParseInt(f[3], 10, 64)
	if got, err := s.Receive(ctx, a.ID, 0, 1, "m1", 1, seq, f[4]); err != nil || got != 1 {
		t.Fatalf("receive m1: %d %v", got, err)
	}
	s.Client().HDel(ctx, s.ShardKeys(a.ID, 3)[1].Moving, "m1")
	var sl sale
	for _, u := range usersOf(12, 0, 3) {
		sl.join(ctx, t, s, a.ID, u, 0)
	}
	restore()
	if _, err := s.Reap(ctx, a.ID, 1000); err != nil {
		t.Fatal(err)
	}
	a = rebuildAlone(t, s, a, sl.won)
	checkBits(t, s, a, stockN)
	for u := range 100 {
		sl.join(ctx, t, s, a.ID, fmt.Sprintf("z%d", u), 0)
	}
	sl.check(t, stockN, 1)
	checkBits(t, s, a, stockN)
}
