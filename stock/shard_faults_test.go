package stock_test

// Faults and races of sharded activities: several instances, a lost route
// key, a long rebuild, random operations checked against the bitmaps.

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"seckill/activity"
	"seckill/internal/testenv"
	"seckill/stock"
)

// twoInstances returns two Stores on the same Redis and prefix (two
// instances of the service) and a sharded activity not preheated yet.
func twoInstances(t *testing.T, id, stockN, perUser int64, shards int) (*stock.Store, *stock.Store, *activity.Activity) {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	s1 := stock.New(rdb, stock.Options{Prefix: prefix, Lease: time.Minute})
	s2 := stock.New(rdb, stock.Options{Prefix: prefix, Lease: time.Minute})
	t.Cleanup(s1.Stop)
	t.Cleanup(s2.Stop)
	a := &activity.Activity{ID: id, Stock: stockN, PerUserLimit: perUser, State: activity.StateOpen, Shards: shards,
		BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour), CreatedAt: time.Now()}
	return s1, s2, a
}

// checkBits fails t unless the shards' bitmaps agree with their counters:
// every number of 1..total is clear on at most one shard, each shard's
// clear numbers are exactly stock-used, and clear + used + in transit over
// all shards is the activity's stock.
func checkBits(t *testing.T, s *stock.Store, a *activity.Activity, total int64) {
	t.Helper()
	ctx := context.Background()
	rdb := s.Client()
	owner, owns := map[int64]int{}, map[int64]int{}
	var sum int64
	for j, k := range s.ShardKeys(a.ID, a.Shards) {
		bm, err := rdb.Get(ctx, k.Slots).Bytes()
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Fatal(err)
		}
		// What the shard owns: every number it has free, and as many as
		// its stock.
		ob, err := rdb.Get(ctx, k.Owns).Bytes()
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Fatal(err)
		}
		bit := func(b []byte, n int64) bool { return n/8 < int64(len(b)) && b[n/8]&(0x80>>(n%8)) != 0 }
		var owned int64
		for n := int64(0); n < int64(len(ob))*8; n++ {
			if !bit(ob, n) {
				continue
			}
			owned++
			if o, ok := owns[n]; ok || n < 1 || n > total {
				t.Errorf("number %d owned by shards %d and %d (stock %d)", n, o, j, total)
			}
			owns[n] = j
		}
		if st, _ := rdb.HGet(ctx, k.Meta, "stock").Int64(); owned != st {
			t.Errorf("shard %d owns %d numbers, its stock is %d", j, owned, st)
		}
		size, _ := rdb.HGet(ctx, k.Meta, "size").Int64()
		for n := int64(1); n <= min(total, size); n++ {
			if !bit(bm, n) && !bit(ob, n) {
				t.Errorf("number %d free on shard %d, which does not own it", n, j)
			}
		}
		st, _ := rdb.HGet(ctx, k.Meta, "stock").Int64()
		used, _ := rdb.Get(ctx, k.Used).Int64()
		var clear int64
		for n := int64(1); n <= min(total, size); n++ {
			set := n/8 < int64(len(bm)) && bm[n/8]&(0x80>>(n%8)) != 0
			if !set {
				clear++
				if o, ok := owner[n]; ok {
					t.Errorf("number %d free on shards %d and %d", n, o, j)
				}
				owner[n] = j
			}
		}
		if clear != st-used {
			t.Errorf("shard %d: %d clear numbers, stock %d - used %d = %d", j, clear, st, used, st-used)
		}
		moving, _ := rdb.HGetAll(ctx, k.Moving).Result()
		var transit int64
		for _, v := range moving {
			var to, ep, at, sq int64
			var rest string
			_, _ = fmt.Sscanf(v, "%d:%d:%d:%d:%s", &to, &ep, &at, &sq, &rest)
			transit++ // counted as moves only
		}
		_ = transit
		sum += st
	}
	if sum != total {
		t.Errorf("the shards' stocks add up to %d, want %d (moves in transit are not counted)", sum, total)
	}
}

// An instance that looked at a sharded activity before its open (and so
// keeps a layout of one shard for a second) must see it live once another
// instance preheated it: the job's rebuild asks Counters again under the
// state lock after an open's preheat landed, and a wrong "no state" there
// fences the fresh, healthy shards and rebuilds them in a new epoch.
func TestShardedCountersAfterAnotherInstanceOpened(t *testing.T) {
	ctx := context.Background()
	job, opener, a := twoInstances(t, 9101, 30, 1, 3)
	if _, ok, err := job.Counters(ctx, a.ID); ok || err != nil {
		t.Fatalf("counters before the open: %v %v", ok, err)
	}
	if err := opener.Preheat(ctx, a); err != nil {
		t.Fatal(err)
	}
	job.Learn(a) // as the job does with each activity it reconciles
	if _, ok, err := job.Counters(ctx, a.ID); !ok || err != nil {
		t.Fatalf("counters of a freshly preheated sharded activity from another instance: ok=%v err=%v, want live", ok, err)
	}
}

// A close must stop the sale on every shard even when the instance that
// closes cannot read the route key (its master lost it: FLUSHALL,
// eviction) while another instance still routes joins by its cached
// layout.
func TestShardedCloseWithoutTheRouteKey(t *testing.T) {
	ctx := context.Background()
	joins, admin, a := twoInstances(t, 9102, 30, 1, 3)
	if err := joins.Preheat(ctx, a); err != nil {
		t.Fatal(err)
	}
	claim(t, joins, a.ID, "first") // the join instance has the layout cached
	route := joins.ShardKeys(a.ID, 1)[0].Meta
	route = route[:len(route)-len("meta")] + "route"
	if n, err := joins.Client().Del(ctx, route).Result(); err != nil || n != 1 {
		t.Fatalf("del %s: %d %v", route, n, err)
	}
	admin.Learn(a) // as a close does, under the state lock
	if err := admin.Close(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	c := activity.Claim{ActivityID: a.ID, UserID: "after-close", ClaimID: "after-close"}
	if err := joins.Claim(ctx, &c); !errors.Is(err, activity.ErrNotOpen) {
		t.Fatalf("claim after Close answered nil: %v (slot %d, shard %d), want not open", err, c.Slot, c.Shard)
	}
}

// The sharded rebuild must keep the activity's state lock, as the one of
// one shard does (every fenced script renews it): a rebuild that outlasts
// its TTL otherwise lets an open, a close, a stock change or another
// rebuild take the lock while it still writes.
func TestShardedRebuildKeepsTheStateLock(t *testing.T) {
	for _, shards := range []int{1, 3} {
		t.Run(strconv.Itoa(shards), func(t *testing.T) {
			ctx := context.Background()
			s, _, a := twoInstances(t, 9103, 30, 1, shards)
			if err := s.Preheat(ctx, a); err != nil {
				t.Fatal(err)
			}
			var valid []activity.Participation
			for u := range 6 {
				c := confirmed(t, s, a.ID, fmt.Sprintf("k%d", u), "")
				valid = append(valid, settledAs(c))
			}
			slicesSortBySlot(valid)
			held, err := s.Lock(ctx, a.ID, "state", 400*time.Millisecond)
			if err != nil || held == nil {
				t.Fatal(held, err)
			}
			defer held.Release()
			a.Epoch = 2
			page := 0
			stolen := false
			next := func(context.Context) ([]activity.Participation, error) {
				time.Sleep(250 * time.Millisecond)
				if page == 1 {
					if l, err := s.Lock(ctx, a.ID, "state", time.Minute); err == nil && l != nil {
						stolen = true
						l.Release()
					}
				}
				if page >= len(valid) || page > 3 {
					return nil, nil
				}
				page++
				return valid[page-1 : page], nil
			}
			err = s.Rebuild(ctx, a, next, held)
			if stolen {
				t.Errorf("another holder took the state lock during the rebuild (rebuild err %v)", err)
			} else if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A raise of a sharded activity, far past a byte of the bitmap, then every
// join from one shard that did not get the new numbers: they all sell,
// none twice.
func TestShardedRaiseThenDrainOneShard(t *testing.T) {
	ctx := context.Background()
	s, a := newShardedStore(t, 9104, 10, 1, 3)
	checkBits(t, s, a, 10)
	if err := s.SetStock(ctx, a.ID, 203); err != nil {
		t.Fatal(err)
	}
	checkBits(t, s, a, 203)
	var sl sale
	for i, u := range usersOf(260, 2, 3) {
		sl.join(ctx, t, s, a.ID, u, i)
	}
	sl.check(t, 203, 1)
	checkBits(t, s, a, 203)
}

// Fewer numbers than shards: the empty shards' users buy from the others.
func TestShardedStockBelowShards(t *testing.T) {
	ctx := context.Background()
	s, a := newShardedStore(t, 9105, 2, 1, 4)
	checkBits(t, s, a, 2)
	var sl sale
	for i, u := range usersOf(5, 3, 4) {
		sl.join(ctx, t, s, a.ID, u, i)
	}
	sl.check(t, 2, 1)
}

// Random joins, releases, reaps, moves and rebuilds on several shards; the
// bitmaps agree with the counters after every step, and the sale ends at
// exactly stock with no slot twice.
func TestShardedRandomOps(t *testing.T) {
	ctx := context.Background()
	defer stock.SetMoveGrace(0)()
	for _, cfg := range []struct {
		stockN int64
		k      int
	}{{17, 2}, {64, 3}, {100, 4}, {9, 5}} {
		t.Run(fmt.Sprintf("%d-%d", cfg.stockN, cfg.k), func(t *testing.T) {
			s, a := newShardedStore(t, 9110+int64(cfg.k), cfg.stockN, 3, cfg.k)
			r := rand.New(rand.NewSource(int64(cfg.k)))
			var held []activity.Claim
			var won []activity.Claim
			users := make([]string, 40)
			for i := range users {
				users[i] = fmt.Sprintf("x%d", i)
			}
			n := 0
			for step := 0; step < 400; step++ {
				switch op := r.Intn(10); {
				case op < 5:
					n++
					c := activity.Claim{ActivityID: a.ID, UserID: users[r.Intn(len(users))], ClaimID: fmt.Sprintf("r%d", n)}
					if err := s.Claim(ctx, &c); err == nil {
						held = append(held, c)
					}
				case op < 7 && len(held) > 0:
					i := r.Intn(len(held))
					if err := s.Release(ctx, held[i]); err != nil {
						t.Fatal(err)
					}
					held = append(held[:i], held[i+1:]...)
				case op < 9 && len(held) > 0:
					i := r.Intn(len(held))
					if err := s.Confirm(ctx, held[i], time.Now()); err != nil {
						t.Fatal(err)
					}
					won = append(won, held[i])
					held = append(held[:i], held[i+1:]...)
				default:
					from, to := r.Intn(cfg.k), r.Intn(cfg.k)
					if from != to {
						if _, err := s.CarveAs(ctx, a.ID, fmt.Sprintf("m%d", step), from, to, int64(1+r.Intn(5))); err != nil {
							t.Fatal(err)
						}
						if _, err := s.Reap(ctx, a.ID, 100); err != nil {
							t.Fatal(err)
						}
					}
				}
				checkBits(t, s, a, cfg.stockN)
				if t.Failed() {
					t.Fatalf("after step %d", step)
				}
			}
			for _, h := range held {
				if err := s.Release(ctx, h); err != nil {
					t.Fatal(err)
				}
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

var _ = sync.Mutex{}

// A number claimed and given back on one shard, then moved and claimed on
// another, is claimed there under a higher sequence number (DecideLost
// keeps the last claim of a slot), also when the job finishes the move.
func TestShardedSeqAfterAMove(t *testing.T) {
	ctx := context.Background()
	defer stock.SetMoveGrace(0)()
	s, a := newShardedStore(t, 9120, 4, 10, 2)
	zero, one := usersOf(1, 0, 2)[0], usersOf(1, 1, 2)[0]
	var last activity.Claim
	for range 30 { // shard 1's sequence runs far ahead
		c := claim(t, s, a.ID, one)
		if err := s.Release(ctx, c); err != nil {
			t.Fatal(err)
		}
		last = c
	}
	if n, err := s.CarveAs(ctx, a.ID, "seq-move", 1, 0, 2); err != nil || n != 2 {
		t.Fatalf("carve %d %v", n, err)
	}
	if _, err := s.Reap(ctx, a.ID, 10); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		c := claim(t, s, a.ID, zero)
		if c.Slot == last.Slot && c.Seq <= last.Seq {
			t.Errorf("slot %d claimed on shard 0 with seq %d after seq %d on shard 1", c.Slot, c.Seq, last.Seq)
		}
	}
	checkBits(t, s, a, 4)
}

// A rebuild with the valid records all on one shard's users and spread
// over byte boundaries, then a raise and a preheat again: the bitmaps
// agree with the counters throughout and the sale ends at exactly stock.
func TestShardedRebuildRaisePreheat(t *testing.T) {
	ctx := context.Background()
	s, a := newShardedStore(t, 9121, 100, 1, 3)
	var sl sale
	for i, u := range usersOf(37, 1, 3) {
		sl.join(ctx, t, s, a.ID, u, i)
	}
	valid := make([]activity.Participation, len(sl.won))
	for i, w := range sl.won {
		valid[i] = activity.Participation{ActivityID: a.ID, Slot: w.Slot, UserID: w.UserID, ClaimID: w.ClaimID, Epoch: w.Epoch}
	}
	slicesSortBySlot(valid)
	if err := s.Fence(ctx, a); err != nil {
		t.Fatal(err)
	}
	a.Epoch = 2
	if err := rebuild(t, s, a, valid); err != nil {
		t.Fatal(err)
	}
	checkBits(t, s, a, 100)
	if err := s.SetStock(ctx, a.ID, 150); err != nil {
		t.Fatal(err)
	}
	a.Stock = 150
	checkBits(t, s, a, 150)
	if err := s.Preheat(ctx, a); err != nil {
		t.Fatal(err)
	}
	checkBits(t, s, a, 150)
	for i, u := range usersOf(300, 2, 3) {
		sl.join(ctx, t, s, a.ID, u, i+1000)
	}
	sl.check(t, 150, 1)
	checkBits(t, s, a, 150)
}

// Three instances, joins homed mostly on one shard, a third of the claims
// given back: every refill and move races the others; the sale ends at
// exactly stock, no slot twice, and the bitmaps agree with the counters.
func TestShardedConcurrentInstances(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	const stockN, k = 200, 4
	a := &activity.Activity{ID: 9130, Stock: stockN, PerUserLimit: 1, State: activity.StateOpen, Shards: k,
		BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour), CreatedAt: time.Now()}
	var ss []*stock.Store
	for range 3 {
		s := stock.New(rdb, stock.Options{Prefix: prefix, Lease: time.Minute})
		t.Cleanup(s.Stop)
		ss = append(ss, s)
	}
	if err := ss[0].Preheat(ctx, a); err != nil {
		t.Fatal(err)
	}
	users := append(usersOf(600, 0, k)[:500], usersOf(100, 3, k)...)
	var sl sale
	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		for i, u := range users {
			s := ss[i%3]
			wg.Go(func() {
				c := activity.Claim{ActivityID: a.ID, UserID: u, ClaimID: fmt.Sprintf("c%d-%s", round, u)}
				err := s.Claim(ctx, &c)
				if err != nil {
					return
				}
				if i%3 == 0 {
					if err := s.Release(ctx, c); err != nil {
						t.Error(err)
					}
					return
				}
				if err := s.Confirm(ctx, c, time.Now()); err != nil {
					t.Error(err)
					return
				}
				sl.mu.Lock()
				if sl.perUser == nil {
					sl.perUser, sl.perSlot = map[string]int{}, map[int64]int{}
				}
				sl.won = append(sl.won, c)
				sl.perUser[u]++
				sl.perSlot[c.Slot]++
				sl.mu.Unlock()
			})
		}
		wg.Wait()
	}
	for i := range 400 {
		sl.join(ctx, t, ss[i%3], a.ID, fmt.Sprintf("tail%d", i), 0)
	}
	sl.check(t, stockN, 1)
	checkBits(t, ss[0], a, stockN)
}
