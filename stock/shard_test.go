package stock_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"seckill/activity"
	"seckill/internal/testenv"
	"seckill/stock"
)

// newShardedStore returns a Store on the test Redis and a preheated
// activity of the given number of shards.
func newShardedStore(t *testing.T, id, stockN, perUser int64, shards int) (*stock.Store, *activity.Activity) {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	s := stock.New(rdb, stock.Options{Prefix: prefix, Lease: time.Minute})
	t.Cleanup(s.Stop)
	a := &activity.Activity{ID: id, Stock: stockN, PerUserLimit: perUser, State: activity.StateOpen, Shards: shards,
		BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour), CreatedAt: time.Now(), Epoch: 1}
	if err := s.Preheat(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	return s, a
}

// sale is what a storm of joins came to: the confirmed claims, each user's
// count and each slot's.
type sale struct {
	mu      sync.Mutex
	won     []activity.Claim
	perUser map[string]int
	perSlot map[int64]int
	soldOut int
	busy    int
}

// join claims and confirms a slot for user, and counts the answer.
func (sl *sale) join(ctx context.Context, t *testing.T, s *stock.Store, id int64, user string, n int) {
	c := activity.Claim{ActivityID: id, UserID: user, ClaimID: fmt.Sprintf("c-%s-%d", user, n)}
	err := s.Claim(ctx, &c)
	if err == nil {
		err = s.Confirm(ctx, c, time.Now())
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.perUser == nil {
		sl.perUser, sl.perSlot = map[string]int{}, map[int64]int{}
	}
	switch {
	case err == nil:
		sl.won = append(sl.won, c)
		sl.perUser[user]++
		sl.perSlot[c.Slot]++
	case errors.Is(err, activity.ErrSoldOut):
		sl.soldOut++
	case errors.Is(err, activity.ErrSlotsInFlight):
		sl.busy++
	case errors.Is(err, activity.ErrLimitReached):
	default:
		t.Errorf("join for %s: %v", user, err)
	}
}

// check fails t unless exactly stock claims won, on distinct slots within
// the stock, nobody over limit.
func (sl *sale) check(t *testing.T, stockN int64, limit int) {
	t.Helper()
	if int64(len(sl.won)) != stockN {
		t.Errorf("%d tokens issued, want exactly %d (sold out %d, busy %d)", len(sl.won), stockN, sl.soldOut, sl.busy)
	}
	for slot, n := range sl.perSlot {
		if n > 1 || slot < 1 || slot > stockN {
			t.Errorf("slot %d issued %d times (stock %d)", slot, n, stockN)
		}
	}
	for u, n := range sl.perUser {
		if n > limit {
			t.Errorf("user %s holds %d tokens, limit %d", u, n, limit)
		}
	}
}

func TestShardKeysKeepTheActivityFirstInTheTag(t *testing.T) {
	s := stock.New(nil, stock.Options{Prefix: "p"})
	if k := s.ShardKeys(42, 1); len(k) != 1 || k[0].Meta != "p:{42}:meta" {
		t.Fatalf("one shard: %+v", k)
	}
	keys := s.ShardKeys(42, 3)
	windows := map[int]bool{}
	for j, k := range keys {
		if !strings.HasPrefix(k.Meta, "p:{42.3.") || !strings.HasPrefix(k.LockPrefix, "p:{42.3.") || !strings.HasSuffix(k.LockPrefix, ":lock:42_") {
			t.Errorf("shard %d: keys %+v", j, k)
		}
		windows[int(stock.KeySlot(k.Meta))*3/16384] = true
		if stock.KeySlot(k.Meta) != stock.KeySlot(k.Slots) {
			t.Errorf("shard %d: keys on two hash slots", j)
		}
	}
	if len(windows) != 3 {
		t.Errorf("the tags of three shards fall in %d of three windows of the hash slots", len(windows))
	}
}

// A storm on three shards, limit 2: exactly stock tokens, no slot twice,
// nobody over the limit, and every shard sold from.
func TestShardedStorm(t *testing.T) {
	ctx := context.Background()
	const stockN, limit, users = 90, 2, 150
	s, a := newShardedStore(t, 9001, stockN, limit, 3)
	var sl sale
	var wg sync.WaitGroup
	for u := range users {
		for n := range 3 {
			wg.Go(func() { sl.join(ctx, t, s, a.ID, fmt.Sprintf("u%d", u), n) })
		}
	}
	wg.Wait()
	sl.check(t, stockN, limit)
	c := counters(t, s, a.ID)
	if c.Issued != stockN || c.Claimed != stockN || c.InFlight != 0 {
		t.Errorf("counters %+v, want %d issued", c, stockN)
	}
	for j, k := range s.ShardKeys(a.ID, 3) {
		if n, _ := s.Client().Get(ctx, k.Issued).Int64(); n == 0 {
			t.Errorf("shard %d issued nothing", j)
		}
	}
	// Sold out, for good, on every shard.
	for u := range 6 {
		c := activity.Claim{ActivityID: a.ID, UserID: fmt.Sprintf("late%d", u), ClaimID: fmt.Sprintf("late%d", u)}
		if err := s.Claim(ctx, &c); !errors.Is(err, activity.ErrSoldOut) {
			t.Errorf("claim after the sell-out: %v, want sold out", err)
		}
	}
}

// usersOf returns n user IDs whose home shard of k is j.
func usersOf(n, j, k int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		if u := fmt.Sprintf("d%d", i); stock.HomeShard(u, k) == j {
			out = append(out, u)
		}
	}
	return out
}

// Every user homed on one shard: the other shards' numbers move to it, and
// the whole stock sells, none of it twice.
func TestShardedUnevenDrain(t *testing.T) {
	ctx := context.Background()
	const stockN = 120
	s, a := newShardedStore(t, 9002, stockN, 1, 3)
	var sl sale
	var wg sync.WaitGroup
	for _, u := range usersOf(200, 0, 3) {
		wg.Go(func() { sl.join(ctx, t, s, a.ID, u, 0) })
	}
	wg.Wait()
	// Joins answered busy while numbers moved may try again.
	for _, u := range usersOf(400, 0, 3)[200:] {
		sl.join(ctx, t, s, a.ID, u, 0)
	}
	sl.check(t, stockN, 1)
	if sl.soldOut == 0 {
		t.Error("no join was answered sold out after the sell-out")
	}
}

// A shard's numbers run out while another's are all in flight: busy, not
// sold out; once they are given back, they move and sell.
func TestShardedSoldOutOnlyWhenAllAre(t *testing.T) {
	ctx := context.Background()
	s, a := newShardedStore(t, 9003, 4, 4, 2)
	one, two := usersOf(1, 0, 2)[0], usersOf(1, 1, 2)[0]
	var held []activity.Claim
	for range 4 {
		held = append(held, claim(t, s, a.ID, two))
	}
	c := activity.Claim{ActivityID: a.ID, UserID: one, ClaimID: "x"}
	if err := s.Claim(ctx, &c); !errors.Is(err, activity.ErrSlotsInFlight) {
		t.Fatalf("claim while every number is in flight: %v, want busy", err)
	}
	for _, h := range held[:2] {
		if err := s.Release(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		c := activity.Claim{ActivityID: a.ID, UserID: one, ClaimID: fmt.Sprintf("y%d", i)}
		if err := s.Claim(ctx, &c); err != nil {
			t.Fatalf("claim after two were given back on the other shard: %v", err)
		}
		if c.Shard != 0 {
			t.Errorf("claim of a user homed on shard 0 held on shard %d", c.Shard)
		}
	}
}

// A mover that dies between the carve and the receive leaves its numbers
// in the journal; the job gives them to the shard they were for.
func TestShardedMoveFinishedByTheJob(t *testing.T) {
	ctx := context.Background()
	defer stock.SetMoveGrace(0)()
	const stockN = 30
	s, a := newShardedStore(t, 9004, stockN, 1, 3)
	n, err := s.Carve(ctx, a.ID, 1, 0, 7)
	if err != nil || n != 7 {
		t.Fatalf("carve: %d %v", n, err)
	}
	if c := counters(t, s, a.ID); c.Claimed != 0 {
		t.Fatalf("counters after a carve: %+v", c)
	}
	if _, err := s.Reap(ctx, a.ID, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reap(ctx, a.ID, 100); err != nil { // a second pass takes nothing twice
		t.Fatal(err)
	}
	var sl sale
	for i, u := range usersOf(stockN+5, 0, 3) {
		sl.join(ctx, t, s, a.ID, u, i)
	}
	sl.check(t, stockN, 1)
}

// One shard's state lost: the others are fenced, and the rebuild makes all
// of them from the valid participations, sharing the free numbers out
// again; the sale then ends at exactly stock, no slot twice.
func TestShardedRebuild(t *testing.T) {
	ctx := context.Background()
	const stockN = 60
	s, a := newShardedStore(t, 9005, stockN, 2, 3)
	var sl sale
	for u := range 20 {
		sl.join(ctx, t, s, a.ID, fmt.Sprintf("r%d", u), 0)
	}
	keys := s.ShardKeys(a.ID, 3)
	if err := s.Client().Del(ctx, keys[1].Meta, keys[1].Used).Err(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Counters(ctx, a.ID); ok || err != nil {
		t.Fatalf("counters with a shard lost: %v %v", ok, err)
	}
	if err := s.Fence(ctx, a); err != nil {
		t.Fatal(err)
	}
	c := activity.Claim{ActivityID: a.ID, UserID: usersOf(1, 0, 3)[0], ClaimID: "fenced"}
	if err := s.Claim(ctx, &c); !errors.Is(err, activity.ErrNoState) {
		t.Fatalf("claim on a fenced shard: %v, want no state", err)
	}
	valid := make([]activity.Participation, len(sl.won))
	for i, w := range sl.won {
		valid[i] = activity.Participation{ActivityID: a.ID, Slot: w.Slot, UserID: w.UserID, ClaimID: w.ClaimID, Epoch: w.Epoch}
	}
	slicesSortBySlot(valid)
	a.Epoch = 2
	if err := rebuild(t, s, a, valid); err != nil {
		t.Fatal(err)
	}
	if c := counters(t, s, a.ID); c.Claimed != 20 || c.Issued != 20 {
		t.Fatalf("counters after the rebuild: %+v", c)
	}
	for u := range 80 {
		sl.join(ctx, t, s, a.ID, fmt.Sprintf("r%d", u), 1)
	}
	for u := range 80 {
		sl.join(ctx, t, s, a.ID, fmt.Sprintf("r%d", u), 2)
	}
	sl.check(t, stockN, 2)
}

func slicesSortBySlot(ps []activity.Participation) {
	for i := range ps {
		for j := i + 1; j < len(ps); j++ {
			if ps[j].Slot < ps[i].Slot {
				ps[i], ps[j] = ps[j], ps[i]
			}
		}
	}
}

// Settle, Confirmed and Forget find each claim on its user's shard.
func TestShardedSettleAndLookUp(t *testing.T) {
	ctx := context.Background()
	s, a := newShardedStore(t, 9006, 30, 1, 3)
	var ps []activity.Participation
	for u := range 6 {
		c := confirmed(t, s, a.ID, fmt.Sprintf("l%d", u), "")
		ps = append(ps, settledAs(c))
		p, ok, err := s.Confirmed(ctx, a.ID, c.ClaimID)
		if err != nil || !ok || p.Slot != c.Slot || p.UserID != c.UserID {
			t.Fatalf("confirmed %s: %+v %v %v", c.ClaimID, p, ok, err)
		}
	}
	pending := claim(t, s, a.ID, "l-pending")
	ps = append(ps, settledAs(pending))
	out, err := s.Settle(ctx, a.ID, ps)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		want := activity.OutcomeConfirmed
		if i == len(out)-1 {
			want = activity.OutcomeInFlight
		}
		if o != want {
			t.Errorf("outcome %d: %v, want %v", i, o, want)
		}
	}
	if err := s.Forget(ctx, a.ID, ps[:6]); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps[:6] {
		if _, ok, err := s.Confirmed(ctx, a.ID, p.ClaimID); ok || err != nil {
			t.Errorf("confirmed after forget: %v %v", ok, err)
		}
	}
}

// A raise of an open sharded activity adds the numbers past the old stock;
// a lower is refused; a raise from a stale stock is refused.
func TestShardedRaise(t *testing.T) {
	ctx := context.Background()
	s, a := newShardedStore(t, 9007, 9, 1, 3)
	if err := s.SetStock(ctx, a.ID, 15); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStock(ctx, a.ID, 15); err != nil {
		t.Fatalf("the same raise again: %v", err)
	}
	if err := s.SetStock(ctx, a.ID, 12); !errors.Is(err, activity.ErrStockConflict) {
		t.Fatalf("lower: %v, want a stock conflict", err)
	}
	var sl sale
	for u := range 30 {
		sl.join(ctx, t, s, a.ID, fmt.Sprintf("s%d", u), 0)
	}
	sl.check(t, 15, 1)
	var conflict *activity.StockConflictError
	if err := s.SetStock(ctx, a.ID, 10); !errors.As(err, &conflict) || conflict.Claimed != 15 {
		t.Errorf("lower below the claimed: %v, want a conflict naming 15 claimed", err)
	}
}

// Preheating a sharded activity again keeps its sale, moved numbers and
// all.
func TestShardedPreheatAgainKeepsTheSale(t *testing.T) {
	ctx := context.Background()
	s, a := newShardedStore(t, 9008, 12, 1, 2)
	var sl sale
	for i, u := range usersOf(6, 0, 2) {
		sl.join(ctx, t, s, a.ID, u, i)
	}
	if err := s.Preheat(ctx, a); err != nil {
		t.Fatal(err)
	}
	for i, u := range usersOf(20, 0, 2)[6:] {
		sl.join(ctx, t, s, a.ID, u, i)
	}
	sl.check(t, 12, 1)
}

// Close stops claims on every shard; Drop deletes every key of every shard
// and the route key.
func TestShardedCloseAndDrop(t *testing.T) {
	ctx := context.Background()
	s, a := newShardedStore(t, 9009, 30, 1, 3)
	var sl sale
	for u := range 10 {
		sl.join(ctx, t, s, a.ID, fmt.Sprintf("c%d", u), 0)
	}
	if err := s.Close(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{usersOf(1, 0, 3)[0], usersOf(1, 1, 3)[0], usersOf(1, 2, 3)[0]} {
		c := activity.Claim{ActivityID: a.ID, UserID: u, ClaimID: "closed-" + u}
		if err := s.Claim(ctx, &c); !errors.Is(err, activity.ErrNotOpen) {
			t.Errorf("claim of %s after the close: %v, want not open", u, err)
		}
	}
	if err := s.Drop(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	for j, k := range s.ShardKeys(a.ID, 3) {
		tag := strings.TrimSuffix(k.Meta, "meta")
		if keys := testenv.Keys(t, s.Client(), tag+"*"); len(keys) != 0 {
			t.Errorf("shard %d keeps %v after the drop", j, keys)
		}
	}
	if keys := testenv.Keys(t, s.Client(), strings.TrimSuffix(s.KeysOf(a.ID).Meta, "meta")+"*"); len(keys) != 0 {
		t.Errorf("the activity's own tag keeps %v after the drop", keys)
	}
}

// A mover that received its numbers and died before it struck the move from
// the journal: the job receives it again, and the numbers count once.
func TestShardedMoveReceivedOnce(t *testing.T) {
	ctx := context.Background()
	defer stock.SetMoveGrace(0)()
	const stockN = 30
	s, a := newShardedStore(t, 9010, stockN, 1, 3)
	if n, err := s.Carve(ctx, a.ID, 1, 0, 6); err != nil || n != 6 {
		t.Fatalf("carve: %d %v", n, err)
	}
	if err := s.Deliver(ctx, a.ID, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reap(ctx, a.ID, 100); err != nil {
		t.Fatal(err)
	}
	var stocks int64
	for _, k := range s.ShardKeys(a.ID, 3) {
		n, _ := s.Client().HGet(ctx, k.Meta, "stock").Int64()
		stocks += n
	}
	if stocks != stockN {
		t.Fatalf("the shards' stocks add up to %d after the move, want %d", stocks, stockN)
	}
	var sl sale
	for i, u := range usersOf(stockN+5, 0, 3) {
		sl.join(ctx, t, s, a.ID, u, i)
	}
	sl.check(t, stockN, 1)
}

// A raise that read a stock another raise has changed since is refused:
// the numbers past the old stock are given once.
func TestShardedStaleRaiseRefused(t *testing.T) {
	ctx := context.Background()
	s, a := newShardedStore(t, 9011, 9, 1, 3)
	if err := s.SetStock(ctx, a.ID, 12); err != nil {
		t.Fatal(err)
	}
	if err := s.Grant(ctx, a.ID, 1, 9, 15); err == nil {
		t.Fatal("a raise from stock 9 taken after the stock went to 12")
	}
	if err := s.Grant(ctx, a.ID, 1, 9, 12); err != nil {
		t.Fatalf("the same raise again: %v", err)
	}
	var sl sale
	for u := range 20 {
		sl.join(ctx, t, s, a.ID, fmt.Sprintf("g%d", u), 0)
	}
	sl.check(t, 12, 1)
}

// A sharded rebuild whose state lock another holder took (it ran out)
// stops and makes nothing live.
func TestShardedRebuildLosesTheStateLock(t *testing.T) {
	ctx := context.Background()
	s, a := newShardedStore(t, 9012, 30, 1, 3)
	var valid []activity.Participation
	for u := range 4 {
		valid = append(valid, settledAs(confirmed(t, s, a.ID, fmt.Sprintf("lk%d", u), "")))
	}
	slicesSortBySlot(valid)
	held, err := s.Lock(ctx, a.ID, "state", time.Minute)
	if err != nil || held == nil {
		t.Fatal(held, err)
	}
	defer held.Release()
	lock := strings.TrimSuffix(s.KeysOf(a.ID).Meta, "meta") + "state"
	page := 0
	next := func(context.Context) ([]activity.Participation, error) {
		if page == 1 {
			if err := s.Client().Set(ctx, lock, "another", time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if page >= len(valid) {
			return nil, nil
		}
		page++
		return valid[page-1 : page], nil
	}
	a.Epoch = 2
	if err := s.Rebuild(ctx, a, next, held); err == nil {
		t.Fatal("the rebuild went on after another holder took the state lock")
	}
	if _, ok, err := s.Counters(ctx, a.ID); ok || err != nil {
		t.Errorf("counters after the rebuild lost its lock: live %v, %v", ok, err)
	}
}

// Layouts of different numbers of shards never share a hash tag: a store
// that keeps an earlier activity's layout for an ID finds no state under
// it once the new activity opened, and reads the route again.
func TestShardLayoutsShareNoTag(t *testing.T) {
	s := stock.New(nil, stock.Options{Prefix: "p"})
	for id := int64(1); id <= 200; id++ {
		seen := map[string]int{s.KeysOf(id).Meta: 1}
		for k := 2; k <= 8; k++ {
			for _, keys := range s.ShardKeys(id, k) {
				if other, ok := seen[keys.Meta]; ok {
					t.Fatalf("activity %d: a tag of %d shards is one of %d shards: %s", id, k, other, keys.Meta)
				}
				seen[keys.Meta] = k
			}
		}
	}
}
