package stock

// The rebuild of one lost shard of a sharded activity, while the others go
// on selling. Every shard keeps, beside its slots bitmap, the bitmap of the
// numbers it owns (free, claimed or issued; Keys.Owns), which every carve,
// receive, open and rebuild keeps up to date. The lost shard's numbers are
// then those no live shard owns and none has on its way to another live
// shard: told while the live shards are held (hold.lua), so that no number
// moves meanwhile, and once the live shards refuse for good the moves the
// lost shard carved before (a move is received only from the epoch the
// receiver knows its giver by, meta field "from:<shard>"). A move from a
// live shard to the lost one, received before the loss or not, gives its
// numbers to the rebuilt shard. The rebuilt shard's claim sequence goes on
// from the live shards' highest, so that its claims of a number are
// numbered after every earlier one (DecideLost).

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"seckill/activity"
)

// shardRebuild is the rebuild of one lost shard (activity.ShardRebuild).
type shardRebuild struct {
	s     *Store
	l     *layout
	lost  int
	held  *activity.Lock
	total int64  // the activity's stock, as the first shard keeps it
	taken []byte // bit n set: number n is a live shard's or on its way to one
	seq   int64  // the highest claim sequence number of the live shards
	// epochs is the epoch of each live shard, carves its number of carves
	// (carve.lua); toLost the moves each has on its way to the lost shard,
	// which the rebuild gives it.
	epochs, carves map[int]int64
	toLost         map[int][]string
	// holding are the shards whose copy of the state lock the rebuild holds.
	holding []int
	// rebuilt: the lost shard is live again, with the moves of toLost
	// counted received.
	rebuilt bool
}

// BeginShardRebuild begins the rebuild of the one lost shard of sharded
// activity a (activity.SlotStore): it holds every live shard (their moves
// wait), makes them refuse for good the moves the lost shard carved before
// (it is rebuilt in epoch), and tells the lost shard's numbers. It returns
// nil when the shard cannot be rebuilt alone: more than one lost, or a live
// shard made before shards kept their ownership bitmap.
//
// The activity's stock is the one the first shard keeps, or a's when the
// first is lost: a raise writes MySQL first, so the numbers of a raise that
// did not reach Redis are nobody's and go to the first shard, as the raise
// would have given them.
func (s *Store) BeginShardRebuild(ctx context.Context, a *activity.Activity, epoch int64, held *activity.Lock) (activity.ShardRebuild, error) {
	if a.Shards <= 1 || held == nil {
		return nil, nil
	}
	if epoch < 2 {
		// The open's epoch is 1: a rebuilt shard takes a later one.
		return nil, fmt.Errorf("rebuild shard of activity %d in epoch %d", a.ID, epoch)
	}
	l := s.layoutFor(a)
	st, err := s.states(ctx, l)
	if err != nil {
		return nil, err
	}
	lost := -1
	for j, x := range st {
		if !x.live {
			if lost >= 0 {
				return nil, nil
			}
			lost = j
		}
	}
	if lost < 0 {
		return nil, nil
	}
	r := &shardRebuild{s: s, l: l, lost: lost, held: held, epochs: map[int]int64{}, carves: map[int]int64{}, toLost: map[int][]string{}}
	if lost == 0 {
		r.total = a.Stock
	}
	ok, err := r.hold(ctx, epoch)
	if err != nil || !ok {
		r.Done()
		return nil, err
	}
	if err := r.tell(ctx); err != nil {
		r.Done()
		return nil, err
	}
	for j, e := range r.epochs {
		if e >= epoch {
			// Every epoch is one the activity's went through: the lost
			// shard's is later than them all.
			r.Done()
			return nil, fmt.Errorf("rebuild shard %d of activity %d in epoch %d: shard %d is in epoch %d", lost, a.ID, epoch, j, e)
		}
	}
	return r, nil
}

// hold holds every live shard and takes the lost shard's copy of the state
// lock; false when a live shard cannot be held (lost since, or without an
// ownership bitmap).
func (r *shardRebuild) hold(ctx context.Context, epoch int64) (bool, error) {
	s, held := r.s, r.held
	for j, sh := range r.l.shards {
		if j == r.lost {
			ok, err := s.rdb.SetNX(ctx, sh.k.State, held.Token, held.TTL).Result()
			if err != nil {
				return false, unavailable("lock", err)
			}
			if !ok {
				return false, unavailable("rebuild", errors.New("another holder has a shard's state lock"))
			}
			r.holding = append(r.holding, j)
			continue
		}
		n, err := holdScript.Run(ctx, s.rdb, []string{sh.k.Meta, sh.k.State, sh.k.Moving},
			"hold", held.Token, held.TTL.Milliseconds(), r.lost, epoch).Int()
		if err != nil {
			return false, unavailable("rebuild", err)
		}
		switch n {
		case 0:
			return false, nil
		case -1:
			return false, unavailable("rebuild", errors.New("another holder has a shard's state lock"))
		}
		r.holding = append(r.holding, j)
	}
	return true, nil
}

// tell reads, from the held live shards, what they own and have on its
// way, their epochs and claim sequences, and the activity's stock.
func (r *shardRebuild) tell(ctx context.Context) error {
	type reads struct {
		meta  *redis.SliceCmd
		owns  *redis.StringCmd
		moves *redis.MapStringStringCmd
	}
	rs := make([]reads, len(r.l.shards))
	_, _ = r.s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for j, sh := range r.l.shards {
			if j != r.lost {
				rs[j] = reads{p.HMGet(ctx, sh.k.Meta, "epoch", "seq", "total", "carves"), p.Get(ctx, sh.k.Owns), p.HGetAll(ctx, sh.k.Moving)}
			}
		}
		return nil
	})
	var owns [][]byte
	type move struct {
		to       int
		id, runs string
	}
	var moving []move
	for j, x := range rs {
		if j == r.lost {
			continue
		}
		meta, err := x.meta.Result()
		if err != nil {
			return unavailable("rebuild", err)
		}
		if x.owns.Err() != nil && !errors.Is(x.owns.Err(), redis.Nil) {
			return unavailable("rebuild", x.owns.Err())
		}
		moves, err := x.moves.Result()
		if err != nil {
			return unavailable("rebuild", err)
		}
		epoch, err1 := strconv.ParseInt(str(meta[0]), 10, 64)
		seq, err2 := strconv.ParseInt(str(meta[1]), 10, 64)
		if err1 != nil || err2 != nil {
			return unavailable("rebuild", fmt.Errorf("shard %d has no epoch or claim sequence", j))
		}
		r.epochs[j], r.seq = epoch, max(r.seq, seq)
		r.carves[j], _ = strconv.ParseInt(str(meta[3]), 10, 64) // none yet: 0
		if j == 0 {
			if r.total, err = strconv.ParseInt(str(meta[2]), 10, 64); err != nil || r.total < 1 {
				return unavailable("rebuild", errors.New("the first shard keeps no stock"))
			}
		}
		owns = append(owns, []byte(x.owns.Val()))
		for id, v := range moves {
			m, ok := parseMove(v)
			switch {
			case !ok || m.to >= len(r.l.shards):
			case m.to == r.lost:
				r.toLost[j] = append(r.toLost[j], id)
			default:
				moving = append(moving, move{m.to, id, m.runs})
			}
		}
	}
	r.taken = make([]byte, r.total/8+1)
	for j, o := range owns {
		for i, b := range o {
			if i >= len(r.taken) || i == len(r.taken)-1 && b&^(byte(0xff)<<(7-r.total%8)) != 0 {
				// Never so: the first shard keeps the stock, which only grows.
				return unavailable("rebuild", fmt.Errorf("a live shard (%d of those read) owns numbers past the stock %d", j, r.total))
			}
			r.taken[i] |= b
		}
	}
	// A move its receiver took already (the mover died before it dropped
	// it from the journal, or the job has not yet) is not on its way: the
	// receiver's ownership bitmap has its numbers, and may have given them
	// on since. Held, the receivers take none meanwhile.
	got := make([]*redis.BoolCmd, len(moving))
	_, _ = r.s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, m := range moving {
			got[i] = p.SIsMember(ctx, r.l.shards[m.to].k.Moved, m.id)
		}
		return nil
	})
	for i, m := range moving {
		received, err := got[i].Result()
		if err != nil {
			return unavailable("rebuild", err)
		}
		if received {
			continue
		}
		f := strings.Fields(m.runs)
		for i := 0; i+1 < len(f); i += 2 {
			a, _ := strconv.ParseInt(f[i], 10, 64)
			b, _ := strconv.ParseInt(f[i+1], 10, 64)
			for n := max(a, 1); n <= min(b, r.total); n++ {
				r.taken[n/8] |= 0x80 >> (n % 8)
			}
		}
	}
	return nil
}

func str(v any) string { s, _ := v.(string); return s }

// Shard is the number of the lost shard.
func (r *shardRebuild) Shard() int { return r.lost }

// Left reports whether number n left the lost shard: a live shard owns it,
// or it is on its way to one (or it is no number of the activity).
func (r *shardRebuild) Left(n int64) bool {
	return n < 1 || n > r.total || r.taken[n/8]&(0x80>>(n%8)) != 0
}

// Rebuild makes the lost shard's state again (activity.ShardRebuild): the
// numbers that did not leave it, its users' valid participations replayed
// on them, the moves on their way to it counted received, and its claim
// sequence after the live shards'.
func (r *shardRebuild) Rebuild(ctx context.Context, a *activity.Activity, next func(context.Context) ([]activity.Participation, error)) error {
	s, held, k := r.s, r.held, r.l.shards[r.lost].k
	stamp, err := s.clear(ctx, k, held)
	if err != nil {
		return err
	}
	if stamp == "" {
		return errLockLost
	}
	if err := s.rebuildBits(ctx, k, stamp, held, "fill", r.total); err != nil {
		return err
	}
	// Moves from a live shard are taken from its epoch, and only those
	// carved after now but the ones on their way to the shard (counted
	// received below): a mover or a journal that gives one carved before
	// (its numbers came before the loss, or now) is refused.
	meta := []any{"meta", "seq", r.seq + 1}
	for j, e := range r.epochs {
		meta = append(meta, "from:"+strconv.Itoa(j), e, "after:"+strconv.Itoa(j), r.carves[j])
	}
	if err := s.rebuildBits(ctx, k, stamp, held, meta...); err != nil {
		return err
	}
	var moved []any
	for _, ids := range r.toLost {
		for _, id := range ids {
			moved = append(moved, id)
		}
	}
	if len(moved) > 0 {
		if err := s.rebuildBits(ctx, k, stamp, held, append([]any{"moved"}, moved...)...); err != nil {
			return err
		}
	}
	// The free numbers: the lost shard's, but those its valid records hold.
	free := slices.Clone(r.taken)
	for i := range free {
		free[i] = ^free[i]
	}
	free[0] &^= 0x80 // no number 0
	if cut := (r.total + 1) % 8; cut != 0 {
		free[len(free)-1] &= byte(0xff) << (8 - cut)
	}
	k0 := len(r.l.shards)
	ub := shardBuckets(r.total, k0)
	var owned int64
	for _, b := range free {
		owned += int64(bits.OnesCount8(b))
	}
	var valid int64
	for {
		page, err := next(ctx)
		if err != nil {
			return err
		}
		if err := s.renewLocks(ctx, r.l, held); err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		var mine []int
		for i, p := range page {
			if homeOf(p.UserID, k0) != r.lost {
				continue
			}
			if r.Left(p.Slot) {
				return unavailable("rebuild", fmt.Errorf("valid record %s of shard %d holds number %d, which another shard owns", p.Token, r.lost, p.Slot))
			}
			free[p.Slot/8] &^= 0x80 >> (p.Slot % 8)
			mine = append(mine, i)
		}
		valid += int64(len(mine))
		for part := range slices.Chunk(mine, 1000) {
			if err := s.replay(ctx, k, stamp, held, ub, page, part); err != nil {
				return err
			}
		}
	}
	var runs []any
	first := int64(0)
	flush := func() error {
		if len(runs) == 0 {
			return nil
		}
		err := s.rebuildBits(ctx, k, stamp, held, append([]any{"free"}, runs...)...)
		runs = runs[:0]
		return err
	}
	for a, b := range freeRuns(free, r.total) {
		if first == 0 {
			first = a
		}
		runs = append(runs, a, b)
		if len(runs) >= 2*500 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	base := int64(0)
	if first > 0 {
		base = max(first-valid-1, 0)
	}
	in := *a
	in.Epoch = a.ShardEpoch(r.lost)
	m := &shardMeta{stock: owned, base: base, size: r.total, buckets: ub}
	written, err := s.writeMeta(ctx, k, &in, boolArg(a.State == activity.StateOpen), stamp, held, m)
	if err != nil {
		return err
	}
	if !written {
		return errLockLost
	}
	r.rebuilt = true
	return nil
}

// freeRuns yields the runs a..b of set bits of bitmap b, numbers 1 to
// total.
func freeRuns(b []byte, total int64) func(yield func(int64, int64) bool) {
	return func(yield func(int64, int64) bool) {
		set := func(n int64) bool { return b[n/8]&(0x80>>(n%8)) != 0 }
		for n := int64(1); n <= total; {
			if b[n/8] == 0 && n%8 == 0 {
				n += 8
				continue
			}
			if !set(n) {
				n++
				continue
			}
			a := n
			for n <= total && set(n) {
				n++
			}
			if !yield(a, n-1) {
				return
			}
		}
	}
}

// Done lets the live shards move numbers again, each dropping from its
// journal the moves to the lost shard the rebuild gave it, if the shard is
// live again (it counts them received, so a mover or the job that tries one
// again only drops it too; a rebuild that failed leaves them for the next,
// which gives them again), and gives back the lost shard's copy of the
// lock.
func (r *shardRebuild) Done() {
	ctx := context.WithoutCancel(context.Background())
	for _, j := range r.holding {
		k := r.l.shards[j].k
		if j == r.lost {
			unlockScript.Run(ctx, r.s.rdb, []string{k.State}, r.held.Token)
			continue
		}
		args := []any{"free", r.held.Token, r.held.TTL.Milliseconds()}
		if r.rebuilt {
			for _, id := range r.toLost[j] {
				args = append(args, id)
			}
		}
		holdScript.Run(ctx, r.s.rdb, []string{k.Meta, k.State, k.Moving}, args...)
	}
	r.holding = nil
}
