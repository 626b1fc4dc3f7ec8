package stock_test

// Faults around the rebuild of one lost shard alone: journal entries of
// moves that were received already, and a rebuild that fails and is tried
// again.

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"testing"
	"time"

	"seckill/activity"
	"seckill/stock"
)

// journalRuns returns the numbers of move id in shard j's journal.
func journalRuns(t *testing.T, s *stock.Store, a *activity.Activity, j int, id string) []int64 {
	t.Helper()
	v, err := s.Client().HGet(context.Background(), s.ShardKeys(a.ID, a.Shards)[j].Moving, id).Result()
	if err != nil {
		t.Fatalf("move %s in shard %d's journal: %v", id, j, err)
	}
	f := strings.Fields(strings.SplitN(v, ":", 5)[4])
	var out []int64
	for i := 0; i+1 < len(f); i += 2 {
		x, _ := strconv.ParseInt(f[i], 10, 64)
		y, _ := strconv.ParseInt(f[i+1], 10, 64)
		for n := x; n <= y; n++ {
			out = append(out, n)
		}
	}
	return out
}

// shardEpochsAfter is a after the rebuild of its shard j alone: the
// activity's next epoch, and the shard's.
func shardEpochsAfter(a *activity.Activity, j int) *activity.Activity {
	b := *a
	b.Epoch++
	b.ShardEpochs = make([]int64, a.Shards)
	for i := range b.ShardEpochs {
		b.ShardEpochs[i] = a.ShardEpoch(i)
	}
	b.ShardEpochs[j] = b.Epoch
	return &b
}

// TestShardedRebuildKeepsNumbersThatMovedOnAfterAReceivedMove: shard 0
// gives 5 numbers to shard 2, which receives them, but the mover dies
// before it drops the move from shard 0's journal (the job would, after
// the move grace). Shard 2 then gives all its free numbers, those 5 among
// them, to shard 1, which receives them. Shard 1 is lost. Its numbers are
// the 10 it received from shard 2: the stale journal entry of shard 0 must
// not count the 5 as "on their way" to shard 2, which no longer owns them.
func TestShardedRebuildKeepsNumbersThatMovedOnAfterAReceivedMove(t *testing.T) {
	ctx := context.Background()
	const stockN = 30
	s, a := newShardedStore(t, 9451, stockN, 1, 3)
	keys := s.ShardKeys(a.ID, 3)
	if n, err := s.CarveAs(ctx, a.ID, "zero-to-two", 0, 2, 5); err != nil || n != 5 {
		t.Fatalf("carve 0 -> 2: %d %v", n, err)
	}
	moved := journalRuns(t, s, a, 0, "zero-to-two")
	if err := s.Deliver(ctx, a.ID, 0); err != nil { // received; still in 0's journal
		t.Fatal(err)
	}
	// Shard 1 gives its own numbers to shard 0, then takes every free
	// number of shard 2: a move done, dropped from shard 2's journal.
	if n, err := s.CarveAs(ctx, a.ID, "one-to-zero", 1, 0, 100); err != nil || n != 10 {
		t.Fatalf("carve 1 -> 0: %d %v", n, err)
	}
	if err := s.Deliver(ctx, a.ID, 1); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CarveAs(ctx, a.ID, "two-to-one", 2, 1, 100); err != nil || n != 15 {
		t.Fatalf("carve 2 -> 1: %d %v", n, err)
	}
	if err := s.Deliver(ctx, a.ID, 2); err != nil {
		t.Fatal(err)
	}
	for j, id := range map[int]string{1: "one-to-zero", 2: "two-to-one"} {
		if err := s.Client().HDel(ctx, keys[j].Moving, id).Err(); err != nil {
			t.Fatal(err)
		}
	}
	checkBits(t, s, a, stockN)

	loseShard(t, s, a, 1)
	r, held := beginShardRebuild(t, s, a)
	for _, n := range moved {
		if r.Left(n) {
			t.Errorf("number %d, received by shard 2 and given on to the lost shard 1, left it", n)
		}
	}
	a = finishShardRebuild(t, s, a, r, held, nil)
	// The job finishes the stale move: shard 2 received it already.
	defer stock.SetMoveGrace(0)()
	if _, err := s.Reap(ctx, a.ID, 100); err != nil {
		t.Fatal(err)
	}
	checkBits(t, s, a, stockN)
	var sl sale
	for u := range 3 * stockN {
		sl.join(ctx, t, s, a.ID, fmt.Sprintf("m%d", u), 0)
	}
	sl.check(t, stockN, 1)
}

// TestShardedRebuildOfAShardWhoseUsersHoldNumbersThatMovedOn: as above, but
// the lost shard's users claimed and confirmed every number it received;
// their records are valid. The rebuild must make the shard live again with
// them, not refuse them as numbers another shard owns (every retry would).
func TestShardedRebuildOfAShardWhoseUsersHoldNumbersThatMovedOn(t *testing.T) {
	ctx := context.Background()
	const stockN = 30
	s, a := newShardedStore(t, 9452, stockN, 1, 3)
	keys := s.ShardKeys(a.ID, 3)
	if n, err := s.CarveAs(ctx, a.ID, "zero-to-two", 0, 2, 5); err != nil || n != 5 {
		t.Fatalf("carve 0 -> 2: %d %v", n, err)
	}
	if err := s.Deliver(ctx, a.ID, 0); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CarveAs(ctx, a.ID, "one-to-zero", 1, 0, 100); err != nil || n != 10 {
		t.Fatalf("carve 1 -> 0: %d %v", n, err)
	}
	if err := s.Deliver(ctx, a.ID, 1); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CarveAs(ctx, a.ID, "two-to-one", 2, 1, 100); err != nil || n != 15 {
		t.Fatalf("carve 2 -> 1: %d %v", n, err)
	}
	if err := s.Deliver(ctx, a.ID, 2); err != nil {
		t.Fatal(err)
	}
	for j, id := range map[int]string{1: "one-to-zero", 2: "two-to-one"} {
		if err := s.Client().HDel(ctx, keys[j].Moving, id).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var sl sale
	for _, u := range usersOf(15, 1, 3) {
		sl.join(ctx, t, s, a.ID, u, 0)
	}
	if len(sl.won) != 15 {
		t.Fatalf("shard 1's users won %d numbers, want the 15 it received", len(sl.won))
	}
	loseShard(t, s, a, 1)
	held, err := s.Lock(ctx, a.ID, "state", time.Minute)
	if err != nil || held == nil {
		t.Fatal(held, err)
	}
	defer held.Release()
	r, err := s.BeginShardRebuild(ctx, a, a.Epoch+1, held)
	if err != nil || r == nil {
		t.Fatalf("begin: %v %v", r, err)
	}
	defer r.Done()
	valid := participations(a.ID, sl.won)
	slicesSortBySlot(valid)
	if err := r.Rebuild(ctx, shardEpochsAfter(a, 1), pagesOf(valid)); err != nil {
		t.Fatalf("the rebuild of shard 1 with its users' valid records: %v", err)
	}
}

// TestShardedRebuildRetriedCountsALateMoveToTheLostShardOnce: shard 0
// carved 5 numbers for shard 1, and a mover (or the job, which read the
// journal) still means to give them. Shard 1 is lost; its first rebuild
// fails half way (MySQL fails while its valid records are read), its
// second succeeds. The late receive of the move must count once: the
// numbers are shard 1's already.
func TestShardedRebuildRetriedCountsALateMoveToTheLostShardOnce(t *testing.T) {
	ctx := context.Background()
	const stockN = 30
	s, a := newShardedStore(t, 9453, stockN, 1, 3)
	if n, err := s.CarveAs(ctx, a.ID, "to-lost", 0, 1, 5); err != nil || n != 5 {
		t.Fatalf("carve: %d %v", n, err)
	}
	v, err := s.Client().HGet(ctx, s.ShardKeys(a.ID, 3)[0].Moving, "to-lost").Result()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.SplitN(v, ":", 5)
	epoch, _ := strconv.ParseInt(f[1], 10, 64)
	seq, _ := strconv.ParseInt(f[3], 10, 64)
	loseShard(t, s, a, 1)

	// The first try: the valid records cannot be read.
	r, held := beginShardRebuild(t, s, a)
	first := shardEpochsAfter(a, 1)
	failing := func(context.Context) ([]activity.Participation, error) { return nil, errors.New("mysql down") }
	if err := r.Rebuild(ctx, first, failing); err == nil {
		t.Fatal("the rebuild succeeded with MySQL down")
	}
	r.Done()
	held.Release()

	// The retry, in the epoch after.
	r, held = beginShardRebuild(t, s, first)
	a = finishShardRebuild(t, s, first, r, held, nil)
	checkBits(t, s, a, stockN)
	// The sale sells out; then the late receive comes.
	var sl sale
	for u := range 2 * stockN {
		sl.join(ctx, t, s, a.ID, fmt.Sprintf("m%d", u), 0)
	}
	if len(sl.won) != stockN {
		t.Fatalf("%d tokens before the late receive, want %d", len(sl.won), stockN)
	}
	if got, err := s.Receive(ctx, a.ID, 1, 0, "to-lost", epoch, seq, f[4]); err != nil || got < 0 {
		t.Fatalf("late receive: %d %v", got, err)
	}
	checkBits(t, s, a, stockN)
	for u := range 2 * stockN {
		sl.join(ctx, t, s, a.ID, fmt.Sprintf("n%d", u), 0)
	}
	sl.check(t, stockN, 1)
}

// TestShardedRandomOpsWithShardsRebuiltAlone: claims, give-backs,
// confirms and moves left half done, with a shard other than the first
// lost now and then (flushed, or come back stale) and rebuilt alone from the
// confirmed claims. The numbers stay each with one shard, the claims of a
// number are numbered in the order they were made, and the sale then sells
// the whole stock once.
func TestShardedRandomOpsWithShardsRebuiltAlone(t *testing.T) {
	ctx := context.Background()
	defer stock.SetMoveGrace(0)()
	for _, cfg := range []struct {
		stockN int64
		k      int
		seed   int64
	}{{64, 3, 1}, {100, 4, 2}, {40, 5, 3}, {64, 3, 4}, {100, 4, 5}} {
		t.Run(fmt.Sprintf("%d-%d-%d", cfg.stockN, cfg.k, cfg.seed), func(t *testing.T) {
			s, a := newShardedStore(t, 9460+cfg.seed, cfg.stockN, 3, cfg.k)
			r := rand.New(rand.NewSource(cfg.seed))
			var held, won []activity.Claim
			type claimAt struct {
				seq, epoch int64
				user       string
			}
			claims := map[int64][]claimAt{}
			users := make([]string, 40)
			for i := range users {
				users[i] = fmt.Sprintf("x%d", i)
			}
			n := 0
			for step := 0; step < 500; step++ {
				switch op := r.Intn(20); {
				case op < 8:
					n++
					c := activity.Claim{ActivityID: a.ID, UserID: users[r.Intn(len(users))], ClaimID: fmt.Sprintf("r%d", n)}
					if err := s.Claim(ctx, &c); err == nil {
						held = append(held, c)
						// Only claims still of their shard's epoch are
						// ordered with it (DecideLost leaves the others out
						// but valid ones, and a valid one's number is never
						// claimed again).
						for _, e := range claims[c.Slot] {
							if e.epoch == a.ShardEpoch(stock.HomeShard(e.user, cfg.k)) && e.seq >= c.Seq {
								t.Errorf("step %d: slot %d claimed with sequence number %d (epoch %d, shard %d) after %d (epoch %d, shard %d)",
									step, c.Slot, c.Seq, c.Epoch, stock.HomeShard(c.UserID, cfg.k), e.seq, e.epoch, stock.HomeShard(e.user, cfg.k))
							}
						}
						claims[c.Slot] = append(claims[c.Slot], claimAt{c.Seq, c.Epoch, c.UserID})
					}
				case op < 11 && len(held) > 0:
					i := r.Intn(len(held))
					if err := s.Release(ctx, held[i]); err != nil {
						t.Fatal(err)
					}
					held = append(held[:i], held[i+1:]...)
				case op < 15 && len(held) > 0:
					i := r.Intn(len(held))
					if err := s.Confirm(ctx, held[i], time.Now()); err != nil {
						t.Fatal(err)
					}
					won = append(won, held[i])
					held = append(held[:i], held[i+1:]...)
				case op < 18:
					from, to := r.Intn(cfg.k), r.Intn(cfg.k)
					if from != to {
						if _, err := s.CarveAs(ctx, a.ID, fmt.Sprintf("m%d", step), from, to, int64(1+r.Intn(5))); err != nil {
							t.Fatal(err)
						}
						if r.Intn(2) == 0 {
							if _, err := s.Reap(ctx, a.ID, 100); err != nil {
								t.Fatal(err)
							}
						}
					}
				default:
					j := 1 + r.Intn(cfg.k-1)
					if r.Intn(2) == 0 {
						loseShard(t, s, a, j)
					} else {
						meta := s.ShardKeys(a.ID, cfg.k)[j].Meta
						if err := s.Client().HSet(ctx, meta, "replid", "stale").Err(); err != nil {
							t.Fatal(err)
						}
					}
					kept := held[:0]
					for _, h := range held {
						if stock.HomeShard(h.UserID, cfg.k) != j {
							kept = append(kept, h)
						}
					}
					held = kept
					rb, lock := beginShardRebuild(t, s, a)
					if rb.Shard() != j {
						t.Fatalf("rebuilding shard %d, want %d", rb.Shard(), j)
					}
					a = finishShardRebuild(t, s, a, rb, lock, participations(a.ID, won))
					if _, err := s.Reap(ctx, a.ID, 100); err != nil {
						t.Fatal(err)
					}
				}
				inTransit := false
				for _, k := range s.ShardKeys(a.ID, cfg.k) {
					if m, _ := s.Client().HLen(ctx, k.Moving).Result(); m > 0 {
						inTransit = true
					}
				}
				if !inTransit {
					checkBits(t, s, a, cfg.stockN)
				}
				if t.Failed() {
					t.Fatalf("after step %d", step)
				}
			}
			for _, h := range held {
				if err := s.Release(ctx, h); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.Reap(ctx, a.ID, 100); err != nil {
				t.Fatal(err)
			}
			var sl sale
			sl.won = append(sl.won, won...)
			sl.perUser, sl.perSlot = map[string]int{}, map[int64]int{}
			for _, w := range won {
				sl.perUser[w.UserID]++
				sl.perSlot[w.Slot]++
			}
			for i := range 4 * int(cfg.stockN) {
				sl.join(ctx, t, s, a.ID, fmt.Sprintf("late%d", i), 0)
			}
			sl.check(t, cfg.stockN, 3)
			checkBits(t, s, a, cfg.stockN)
		})
	}
}

// TestShardedRaiseAroundAShardRebuiltAlone: the stock is raised while shard
// 1 is lost, and again after it is rebuilt alone; the rebuilt shard sells
// its share, and the whole raised stock sells once.
func TestShardedRaiseAroundAShardRebuiltAlone(t *testing.T) {
	ctx := context.Background()
	defer stock.SetMoveGrace(0)()
	s, a := newShardedStore(t, 9470, 30, 1, 3)
	var sl sale
	for u := range 12 {
		sl.join(ctx, t, s, a.ID, fmt.Sprintf("r%d", u), 0)
	}
	loseShard(t, s, a, 1)
	if err := s.SetStock(ctx, a.ID, 45); err != nil {
		t.Fatal(err)
	}
	a = rebuildAlone(t, s, a, sl.won)
	checkBits(t, s, a, 45)
	if err := s.SetStock(ctx, a.ID, 60); err != nil {
		t.Fatal(err)
	}
	checkBits(t, s, a, 60)
	for _, u := range usersOf(40, 1, 3) {
		sl.join(ctx, t, s, a.ID, u, 0)
	}
	loseShard(t, s, a, 2)
	a = rebuildAlone(t, s, a, sl.won)
	checkBits(t, s, a, 60)
	for u := range 120 {
		sl.join(ctx, t, s, a.ID, fmt.Sprintf("z%d", u), 0)
	}
	sl.check(t, 60, 1)
	checkBits(t, s, a, 60)
}

// TestShardedShardRebuiltAloneAfterAWholeRebuild: the whole activity is
// rebuilt (every shard lost), sells on, then one shard is lost and rebuilt
// alone from the ownership bitmaps the whole rebuild made.
func TestShardedShardRebuiltAloneAfterAWholeRebuild(t *testing.T) {
	ctx := context.Background()
	defer stock.SetMoveGrace(0)()
	const stockN = 50
	s, a := newShardedStore(t, 9471, stockN, 1, 3)
	var sl sale
	for u := range 20 {
		sl.join(ctx, t, s, a.ID, fmt.Sprintf("w%d", u), 0)
	}
	for j := range 3 {
		loseShard(t, s, a, j)
	}
	held, err := s.Lock(ctx, a.ID, "state", time.Minute)
	if err != nil || held == nil {
		t.Fatal(held, err)
	}
	b := *a
	b.Epoch++
	valid := participations(a.ID, sl.won)
	slicesSortBySlot(valid)
	if err := s.Rebuild(ctx, &b, pagesOf(valid), held); err != nil {
		t.Fatal(err)
	}
	held.Release()
	a = &b
	checkBits(t, s, a, stockN)
	for _, u := range usersOf(12, 2, 3) {
		sl.join(ctx, t, s, a.ID, u, 0)
	}
	loseShard(t, s, a, 2)
	r, h := beginShardRebuild(t, s, a)
	a = finishShardRebuild(t, s, a, r, h, participations(a.ID, sl.won))
	checkBits(t, s, a, stockN)
	for u := range 100 {
		sl.join(ctx, t, s, a.ID, fmt.Sprintf("y%d", u), 0)
	}
	sl.check(t, stockN, 1)
}
