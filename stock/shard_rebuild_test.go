package stock_test

// One lost shard of a sharded activity rebuilt alone: the other shards go
// on selling meanwhile, no number moves while its numbers are told, and
// moves in transit either way at the loss end where they belong.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"seckill/activity"
	"seckill/stock"
)

// loseShard deletes every key of shard j of a, as a flush of its master
// does.
func loseShard(t *testing.T, s *stock.Store, a *activity.Activity, j int) {
	t.Helper()
	ctx := context.Background()
	meta := s.ShardKeys(a.ID, a.Shards)[j].Meta
	keys, err := s.Client().Keys(ctx, strings.TrimSuffix(meta, "meta")+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys of shard %d: %v %v", j, keys, err)
	}
	if err := s.Client().Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
}

// beginShardRebuild takes a's state lock and begins the rebuild of its one
// lost shard, in the next epoch; it fails t unless the shard can be rebuilt
// alone.
func beginShardRebuild(t *testing.T, s *stock.Store, a *activity.Activity) (activity.ShardRebuild, *activity.Lock) {
	t.Helper()
	held, err := s.Lock(context.Background(), a.ID, "state", time.Minute)
	if err != nil || held == nil {
		t.Fatalf("state lock: %v %v", held, err)
	}
	r, err := s.BeginShardRebuild(context.Background(), a, a.Epoch+1, held)
	if err != nil || r == nil {
		t.Fatalf("begin the rebuild of one shard: %v %v", r, err)
	}
	return r, held
}

// finishShardRebuild rebuilds the lost shard from valid and lets the shards
// move again; it returns a with the shard's new epoch.
func finishShardRebuild(t *testing.T, s *stock.Store, a *activity.Activity, r activity.ShardRebuild, held *activity.Lock, valid []activity.Participation) *activity.Activity {
	t.Helper()
	defer held.Release()
	defer r.Done()
	b := *a
	b.Epoch++
	b.ShardEpochs = make([]int64, a.Shards)
	for j := range b.ShardEpochs {
		b.ShardEpochs[j] = a.ShardEpoch(j)
	}
	b.ShardEpochs[r.Shard()] = b.Epoch
	slicesSortBySlot(valid)
	if err := r.Rebuild(context.Background(), &b, pagesOf(valid)); err != nil {
		t.Fatal(err)
	}
	return &b
}

// rebuildAlone rebuilds a's one lost shard from the claims won, as the job
// does, and returns a with the shard's new epoch.
func rebuildAlone(t *testing.T, s *stock.Store, a *activity.Activity, won []activity.Claim) *activity.Activity {
	t.Helper()
	r, held := beginShardRebuild(t, s, a)
	return finishShardRebuild(t, s, a, r, held, participations(a.ID, won))
}

// participations returns the records of the claims won.
func participations(id int64, won []activity.Claim) []activity.Participation {
	out := make([]activity.Participation, len(won))
	for i, w := range won {
		out[i] = activity.Participation{ActivityID: id, Slot: w.Slot, UserID: w.UserID, ClaimID: w.ClaimID, Epoch: w.Epoch, Seq: w.Seq}
	}
	return out
}

// TestShardRebuiltAloneWhileTheOthersSell: shard 1 of 3 is lost; its users
// are refused until it is rebuilt, the others' users get tokens all along,
// also while its numbers are told; then the whole stock sells, none twice.
func TestShardRebuiltAloneWhileTheOthersSell(t *testing.T) {
	ctx := context.Background()
	const stockN = 60
	s, a := newShardedStore(t, 9401, stockN, 2, 3)
	var sl sale
	for u := range 24 {
		sl.join(ctx, t, s, a.ID, fmt.Sprintf("r%d", u), 0)
	}
	// A move between two live shards, carved, to be received while held.
	if n, err := s.CarveAs(ctx, a.ID, "live", 2, 0, 2); err != nil || n != 2 {
		t.Fatalf("carve: %d %v", n, err)
	}
	loseShard(t, s, a, 1)
	if _, ok, err := s.Counters(ctx, a.ID); ok || err != nil {
		t.Fatalf("counters with a shard lost: %v %v", ok, err)
	}
	lost := activity.Claim{ActivityID: a.ID, UserID: usersOf(1, 1, 3)[0], ClaimID: "lost"}
	if err := s.Claim(ctx, &lost); !errors.Is(err, activity.ErrNoState) {
		t.Fatalf("claim on the lost shard: %v, want no state", err)
	}
	won := len(sl.won)
	for _, j := range []int{0, 2} {
		sl.join(ctx, t, s, a.ID, usersOf(1, j, 3)[0], 0)
	}
	if len(sl.won) != won+2 {
		t.Fatalf("the live shards issued %d tokens after the loss, want 2", len(sl.won)-won)
	}
	r, held := beginShardRebuild(t, s, a)
	if r.Shard() != 1 {
		t.Fatalf("rebuilding shard %d, want 1", r.Shard())
	}
	// Held: they sell, and move nothing.
	for _, j := range []int{0, 2} {
		sl.join(ctx, t, s, a.ID, usersOf(2, j, 3)[1], 0)
	}
	if len(sl.won) != won+4 {
		t.Fatalf("the live shards issued %d tokens after the loss, want 4", len(sl.won)-won)
	}
	if n, err := s.Carve(ctx, a.ID, 0, 2, 3); err != nil || n != 0 {
		t.Fatalf("a move while held took %d numbers, %v", n, err)
	}
	move := strings.SplitN(s.Client().HGet(ctx, s.ShardKeys(a.ID, 3)[2].Moving, "live").Val(), ":", 5)
	if len(move) != 5 {
		t.Fatalf("the move between live shards: %v", move)
	}
	if got, err := s.Receive(ctx, a.ID, 0, 2, "live", 1, 0, move[4]); err != nil || got != 0 {
		t.Fatalf("a receive while held: %d %v, want 0 (later)", got, err)
	}
	var seq int64 // the live shards' highest
	for _, w := range sl.won {
		if stock.HomeShard(w.UserID, 3) != 1 {
			seq = max(seq, w.Seq)
		}
	}
	a = finishShardRebuild(t, s, a, r, held, participations(a.ID, sl.won))
	// The rebuilt shard's claims are numbered after every claim of the
	// live shards.
	c := activity.Claim{ActivityID: a.ID, UserID: usersOf(3, 1, 3)[2], ClaimID: "after"}
	if err := s.Claim(ctx, &c); err != nil || c.Seq <= seq || c.Epoch != 2 {
		t.Fatalf("claim on the rebuilt shard: seq %d epoch %d, %v; want a seq past %d, epoch 2", c.Seq, c.Epoch, err, seq)
	}
	if err := s.Release(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver(ctx, a.ID, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reap(ctx, a.ID, 100); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Counters(ctx, a.ID); !ok || err != nil {
		t.Fatalf("counters after the rebuild: %v %v", ok, err)
	}
	checkBits(t, s, a, stockN)
	for round := range 3 {
		for u := range 80 {
			sl.join(ctx, t, s, a.ID, fmt.Sprintf("r%d", u), round+1)
		}
	}
	sl.check(t, stockN, 2)
	checkBits(t, s, a, stockN)
}

// TestShardRebuildMovesInTransit: a move from a live shard to the lost one
// (not received), a move the lost shard carved (its journal lost with it,
// received later by a mover that kept the answer), and a move between two
// live shards, all in transit at the loss: the first's numbers go to the
// rebuilt shard and its late receive counts once, the second's go to the
// rebuilt shard and its late receive is refused, the third's stay with the
// live shards.
func TestShardRebuildMovesInTransit(t *testing.T) {
	ctx := context.Background()
	const stockN = 90
	s, a := newShardedStore(t, 9402, stockN, 1, 3)
	keys := s.ShardKeys(a.ID, 3)
	for _, m := range []struct {
		id       string
		from, to int
	}{{"to-lost", 0, 1}, {"from-lost", 1, 2}, {"live", 2, 0}} {
		if n, err := s.CarveAs(ctx, a.ID, m.id, m.from, m.to, 5); err != nil || n != 5 {
			t.Fatalf("carve %s: %d %v", m.id, n, err)
		}
	}
	fromLost, err := s.Client().HGet(ctx, keys[1].Moving, "from-lost").Result()
	if err != nil {
		t.Fatal(err)
	}
	loseShard(t, s, a, 1)
	r, held := beginShardRebuild(t, s, a)
	runsOf := func(shard int, id string) [][2]int64 {
		v := fromLost
		if shard != 1 {
			v = s.Client().HGet(ctx, keys[shard].Moving, id).Val()
		}
		f := strings.Fields(strings.SplitN(v, ":", 5)[4])
		var out [][2]int64
		for i := 0; i+1 < len(f); i += 2 {
			x, _ := strconv.ParseInt(f[i], 10, 64)
			y, _ := strconv.ParseInt(f[i+1], 10, 64)
			out = append(out, [2]int64{x, y})
		}
		return out
	}
	for _, c := range []struct {
		shard int
		id    string
		left  bool
	}{{0, "to-lost", false}, {1, "from-lost", false}, {2, "live", true}} {
		for _, run := range runsOf(c.shard, c.id) {
			for n := run[0]; n <= run[1]; n++ {
				if r.Left(n) != c.left {
					t.Errorf("move %s: number %d left the lost shard: %v, want %v", c.id, n, r.Left(n), c.left)
				}
			}
		}
	}
	a = finishShardRebuild(t, s, a, r, held, nil)
	if n, _ := s.Client().HExists(ctx, keys[0].Moving, "to-lost").Result(); n {
		t.Error("the move to the lost shard is still in its giver's journal")
	}
	// The mover of the lost shard's move, late: refused.
	f := strings.SplitN(fromLost, ":", 5)
	epoch, _ := strconv.ParseInt(f[1], 10, 64)
	seq, _ := strconv.ParseInt(f[3], 10, 64)
	if got, err := s.Receive(ctx, a.ID, 2, 1, "from-lost", epoch, seq, f[4]); err != nil || got != -1 {
		t.Fatalf("late receive of the lost shard's move: %d %v, want -1", got, err)
	}
	// The move to the lost shard, tried again: counted received, once.
	if got, err := s.Receive(ctx, a.ID, 1, 0, "to-lost", a.ShardEpoch(0), 0, "1 5"); err != nil || got != 1 {
		t.Fatalf("late receive of the move to the lost shard: %d %v, want 1", got, err)
	}
	if err := s.Deliver(ctx, a.ID, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reap(ctx, a.ID, 100); err != nil {
		t.Fatal(err)
	}
	checkBits(t, s, a, stockN)
	var sl sale
	var wg sync.WaitGroup
	for u := range 150 {
		wg.Go(func() { sl.join(ctx, t, s, a.ID, fmt.Sprintf("m%d", u), 0) })
	}
	wg.Wait()
	for u := range 150 {
		sl.join(ctx, t, s, a.ID, fmt.Sprintf("m%d", u), 0)
	}
	sl.check(t, stockN, 1)
}

// TestShardRebuildNotAlone: two shards lost are not rebuilt alone (nil: the
// whole activity is), and leave the live one free to move numbers.
func TestShardRebuildNotAlone(t *testing.T) {
	ctx := context.Background()
	s, a := newShardedStore(t, 9403, 30, 1, 3)
	loseShard(t, s, a, 0)
	loseShard(t, s, a, 2)
	held, err := s.Lock(ctx, a.ID, "state", time.Minute)
	if err != nil || held == nil {
		t.Fatal(held, err)
	}
	defer held.Release()
	if r, err := s.BeginShardRebuild(ctx, a, a.Epoch+1, held); r != nil || err != nil {
		t.Fatalf("two shards lost: %v %v, want nil", r, err)
	}
	if n, _ := s.Client().Exists(ctx, s.ShardKeys(a.ID, 3)[1].State).Result(); n != 0 {
		t.Error("the live shard is still held")
	}
}

// TestShardRebuildOfTheFirstShard: the first shard, which keeps the
// activity's stock, lost after a raise reached MySQL (a's stock) but not
// Redis: rebuilt alone with the stock MySQL has, the raise's numbers its
// own, and the whole raised stock sells once.
func TestShardRebuildOfTheFirstShard(t *testing.T) {
	ctx := context.Background()
	s, a := newShardedStore(t, 9404, 30, 1, 3)
	var sl sale
	for u := range 12 {
		sl.join(ctx, t, s, a.ID, fmt.Sprintf("f%d", u), 0)
	}
	loseShard(t, s, a, 0)
	a.Stock = 36
	r, held := beginShardRebuild(t, s, a)
	if r.Shard() != 0 {
		t.Fatalf("rebuilding shard %d, want 0", r.Shard())
	}
	for n := int64(31); n <= 36; n++ {
		if r.Left(n) {
			t.Errorf("number %d of the raise left the first shard", n)
		}
	}
	a = finishShardRebuild(t, s, a, r, held, participations(a.ID, sl.won))
	checkBits(t, s, a, 36)
	for u := range 60 {
		sl.join(ctx, t, s, a.ID, fmt.Sprintf("f%d", u), 1)
	}
	for u := range 60 {
		sl.join(ctx, t, s, a.ID, fmt.Sprintf("f%d", u), 2)
	}
	sl.check(t, 36, 1)
	// The raise asked again finds it made.
	if err := s.SetStock(ctx, a.ID, 36); err != nil {
		t.Fatal(err)
	}
	checkBits(t, s, a, 36)
}
