package stock

// A sharded activity (Activity.Shards > 1) spreads its state over several
// hash tags, "{42.0}", "{42.4}", ..., each a whole state as one activity has
// (meta, used counter, bitmap, leases, users, ...), so that one hot
// activity uses several Redis Cluster masters. Each user has a home shard,
// from a hash of the user ID: every claim, confirm, release and idempotency
// answer of the user is on it, so the per-user limit and the answer to a
// retry hold as they do for one shard.
//
// The slot numbers stay those of the activity, 1 to stock, each owned by
// one shard at a time: every shard's bitmap has a bit for every number,
// set for a number claimed, issued, or owned by another shard. At the open
// the numbers are split into K runs; a shard whose numbers ran out takes
// free ones from the shard with the most (carve.lua, then receive.lua), so
// that no join is answered sold out while another shard has stock. The move
// is written in the giving shard's journal, in the same step as the carve,
// and received once by id, so that if the mover dies in between the job
// finishes it (Store.Reap): nothing is lost in transit. One lost shard is
// rebuilt alone while the others sell (shard_rebuild.go); otherwise a
// rebuild makes all the shards again from MySQL, under a new epoch, and
// shares the free numbers out afresh. A move is received only from the
// epoch the receiver knows its giver by: one carved before either was
// rebuilt is refused.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"seckill/activity"
)

// layout is how an activity's state is spread over shards: one Keys each.
// Learned from the route key, which a preheat or a rebuild of a sharded
// activity writes; an activity without one has one shard, the keys of
// KeysOf.
type layout struct {
	id     int64
	shards []shardKeys
	// routed: read from a route key, or written by this store; an entry
	// without one is asked again after unroutedFor.
	routed  bool
	expires time.Time
	read    time.Time // when it was made
}

type shardKeys struct {
	k Keys
	// claim is the key list of claim.lua; shared, never written to.
	claim []string
}

// How long a layout is kept before the route key is read again: a routed
// one can only change when an activity's ID is used again (a database
// dropped and made again), one without a route key as soon as the activity
// opens sharded.
const (
	routedFor   = time.Minute
	unroutedFor = time.Second
	// rerouteAfter is how old a layout of one shard without a route key
	// must be for a claim that found no state under it to read the route
	// again: a flood of joins on an activity not open yet reads it a few
	// times a second, not each (a sharded layout is read again at once).
	rerouteAfter = 250 * time.Millisecond
)

func (l *layout) sharded() bool { return len(l.shards) > 1 }

// ShardKeys returns the keys of each shard of an activity of the given
// number of shards: KeysOf(id) alone for one.
func (s *Store) ShardKeys(id int64, shards int) []Keys {
	if shards <= 1 {
		return []Keys{s.KeysOf(id)}
	}
	ids := strconv.FormatInt(id, 10)
	base := ids + "." + strconv.Itoa(shards) + "."
	out := make([]Keys, shards)
	for j := range shards {
		out[j] = s.keysAt(s.prefix+":{"+base+strconv.Itoa(tagSuffix(base, j, shards))+"}:", ids)
	}
	return out
}

// tagSuffix is the last number of the hash tag of shard j of k, after the
// activity's ID and k ("{42.3.x}": layouts of other numbers of shards never
// share a tag, so a store that keeps an earlier activity's layout for the
// ID finds no state, never another layout's): the first j, j+k, j+2k, ...
// whose tag falls in the j-th of k equal windows of Redis Cluster's 16,384
// hash slots. A cluster whose masters serve equal runs of slots, as
// redis-cli --cluster create makes them, then has each shard on another
// master while there are as many masters as shards; the preheat checks
// (Store.Placement).
func tagSuffix(base string, j, k int) int {
	for x := j; x < j+k*100_000; x += k {
		if int(keySlot(base+strconv.Itoa(x)))*k/16384 == j {
			return x
		}
	}
	return j
}

// keySlot is the Redis Cluster hash slot of a hash tag: CRC16 (XMODEM) of
// it modulo 16,384.
func keySlot(tag string) uint16 {
	var crc uint16
	for i := 0; i < len(tag); i++ {
		crc ^= uint16(tag[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % 16384
}

// homeOf is the home shard of a user of an activity of k shards
// (activity.HomeShard; the first four bytes of the SHA-1 of the user ID
// pick the user's bucket within the shard, bucket.lua).
func homeOf(userID string, k int) int { return activity.HomeShard(userID, k) }

// routeKey holds the number of shards of a sharded activity.
func (s *Store) routeKey(id int64) string { return s.tag(id) + "route" }

// newLayout returns the layout of activity id over k shards.
func (s *Store) newLayout(id int64, k int, routed bool) *layout {
	l := &layout{id: id, routed: routed}
	for _, key := range s.ShardKeys(id, k) {
		l.shards = append(l.shards, shardKeys{k: key,
			claim: []string{key.Meta, key.Used, key.Users, key.Slots, key.Leases, key.LockPrefix, key.Idem, key.Held}})
	}
	l.read = time.Now()
	if routed {
		l.expires = l.read.Add(routedFor)
	} else {
		l.expires = l.read.Add(unroutedFor)
	}
	return l
}

// keep puts l in the key cache.
func (s *Store) keep(l *layout) { s.keys[uint64(l.id)%uint64(len(s.keys))].Store(l) }

// layoutOf returns the layout of activity id: from the key cache, else from
// its route key.
func (s *Store) layoutOf(ctx context.Context, id int64) (*layout, error) {
	if l := s.keys[uint64(id)%uint64(len(s.keys))].Load(); l != nil && l.id == id && time.Now().Before(l.expires) {
		return l, nil
	}
	return s.route(ctx, id)
}

// shardsKey is the hash of the number of shards of every sharded activity
// preheated or rebuilt, by ID: the second copy of the route keys, on
// another master than most of them, so that a sharded activity whose route
// key is lost is still found (the third is MySQL's, which Learn tells).
func (s *Store) shardsKey() string { return s.prefix + ":shards" }

// route reads the route key of activity id, and the shards hash when it has
// none, and keeps the layout they say.
func (s *Store) route(ctx context.Context, id int64) (*layout, error) {
	var route, second *redis.StringCmd
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		route = p.Get(ctx, s.routeKey(id))
		second = p.HGet(ctx, s.shardsKey(), strconv.FormatInt(id, 10))
		return nil
	})
	// One copy is enough; with neither read, nothing is known.
	if failed(route) && failed(second) {
		return nil, unavailable("route", route.Err())
	}
	l := s.routed(id, route, second)
	s.keep(l)
	return l, nil
}

// failed reports whether a read got no answer (redis.Nil is one: none).
func failed(c *redis.StringCmd) bool { return c.Err() != nil && !errors.Is(c.Err(), redis.Nil) }

// routed returns the layout of activity id from the reads of its route key
// and of its entry in the shards hash. Without either, an activity this
// store knows sharded (Learn, a route read before) keeps its shards.
func (s *Store) routed(id int64, reads ...*redis.StringCmd) *layout {
	for _, r := range reads {
		if k, err := strconv.Atoi(r.Val()); r.Err() == nil && err == nil && k >= 1 {
			if k > 1 {
				s.sharded.Store(id, k)
			}
			return s.newLayout(id, k, true)
		}
	}
	if k, ok := s.sharded.Load(id); ok {
		return s.newLayout(id, k.(int), true)
	}
	return s.newLayout(id, 1, false)
}

// Learn keeps the layout of a as MySQL has it (activity.SlotStore), once it
// is fixed: from the open on (a draft's may still change, and an approved
// activity may go back to draft).
func (s *Store) Learn(a *activity.Activity) {
	if a.State == activity.StateOpen || a.State == activity.StateClosed {
		s.layoutFor(a)
	}
}

// writeRoute writes both copies of the layout of a sharded activity.
func (s *Store) writeRoute(ctx context.Context, id int64, k int) error {
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.routeKey(id), k, 0)
		p.HSet(ctx, s.shardsKey(), strconv.FormatInt(id, 10), k)
		return nil
	})
	if err != nil {
		return unavailable("route", err)
	}
	return nil
}

// dropRoute deletes both copies of the layout of an activity.
func (s *Store) dropRoute(ctx context.Context, id int64) error {
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.routeKey(id))
		p.HDel(ctx, s.shardsKey(), strconv.FormatInt(id, 10))
		return nil
	})
	s.sharded.Delete(id)
	if err != nil {
		return unavailable("route", err)
	}
	return nil
}

// clearOthers clears what another activity of the same ID (a database
// dropped and made again while Redis kept its keys) left under any tag it
// may have used: the activity's own, the shards of the layout Redis or this
// store keeps for the ID, and a's own shards, each only when the state
// there was made for another activity (clearOther). An old sharded layout's
// route goes when a has one shard.
func (s *Store) clearOthers(ctx context.Context, a *activity.Activity) error {
	old, err := s.route(ctx, a.ID)
	if err != nil {
		return err
	}
	tags := map[string]bool{}
	var all []Keys
	for _, ks := range [][]Keys{{s.KeysOf(a.ID)}, keysOf(old), s.ShardKeys(a.ID, max(a.Shards, 1))} {
		for _, k := range ks {
			if !tags[k.Meta] {
				tags[k.Meta] = true
				all = append(all, k)
			}
		}
	}
	for _, k := range all {
		if err := s.clearOther(ctx, k, a); err != nil {
			return err
		}
	}
	if old.sharded() && a.Shards <= 1 {
		if err := s.dropRoute(ctx, a.ID); err != nil {
			return err
		}
	}
	return nil
}

// keysOf returns the keys of each shard of a layout.
func keysOf(l *layout) []Keys {
	out := make([]Keys, len(l.shards))
	for j, sh := range l.shards {
		out[j] = sh.k
	}
	return out
}

// layoutFor returns the layout of a, whose number of shards is known, and
// keeps it.
func (s *Store) layoutFor(a *activity.Activity) *layout {
	k := max(a.Shards, 1)
	if k > 1 {
		s.sharded.Store(a.ID, k)
	} else {
		s.sharded.Delete(a.ID)
	}
	l := s.newLayout(a.ID, k, true)
	s.keep(l)
	return l
}

// split returns the first numbers of shard j of k at a stock: stock/k each,
// one more for the first stock%k, in order; base is the number before them.
func split(stock int64, j, k int) (base, n int64) {
	q, r := stock/int64(k), stock%int64(k)
	base = int64(j)*q + min(int64(j), r)
	n = q
	if int64(j) < r {
		n++
	}
	return base, n
}

// shardBuckets is the number of user buckets of one shard of an activity:
// its users are spread over the shards.
func shardBuckets(stock int64, k int) int64 { return UserBuckets((stock + int64(k) - 1) / int64(k)) }

// shardMeta is what writeMeta writes of a shard beyond what every state
// has: its own stock, its base (where its claims look first), the
// activity's stock, and at an open the runs of numbers it owns.
type shardMeta struct {
	stock, base, size int64
	runs              []int64
	buckets           int64
}

// preheatShards loads a sharded activity: every shard's state, then its
// route key.
func (s *Store) preheatShards(ctx context.Context, a *activity.Activity) error {
	if err := s.clearOthers(ctx, a); err != nil {
		return err
	}
	l := s.layoutFor(a)
	k := len(l.shards)
	// An open that failed may have left some shards, made at the stock of
	// then: the others are made at it too, and a raise since is given at
	// the end.
	made, err := s.madeAt(ctx, l, a)
	if err != nil {
		return err
	}
	if err := s.list(ctx, a.ID); err != nil {
		return err
	}
	for j, sh := range l.shards {
		base, n := split(made, j, k)
		m := &shardMeta{stock: n, base: base, size: made, buckets: shardBuckets(made, k)}
		if n > 0 {
			m.runs = []int64{base + 1, base + n}
		}
		if err := s.preheatOne(ctx, sh.k, a, m); err != nil {
			return err
		}
	}
	if err := s.writeRoute(ctx, a.ID, k); err != nil {
		return err
	}
	// A state kept from an open that failed keeps its numbers: the stock
	// raised since is given now (a lower was refused).
	if err := s.raiseShards(ctx, l, a.Stock); err != nil {
		return err
	}
	s.checkPlacement(ctx, a.ID, l)
	return nil
}

// madeAt returns the stock the shards of a that Redis keeps for it (their
// creation time is a's) were split at ("made", never changed since, not
// even by a raise), a.Stock when it keeps none: the shards made anew
// (missing, or stale and cleared) take the same split.
func (s *Store) madeAt(ctx context.Context, l *layout, a *activity.Activity) (int64, error) {
	cmds := make([]*redis.SliceCmd, len(l.shards))
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for j, sh := range l.shards {
			cmds[j] = p.HMGet(ctx, sh.k.Meta, "created", "made")
		}
		return nil
	})
	created := strconv.FormatInt(a.CreatedAt.UnixMilli(), 10)
	var totals []int64
	for _, c := range cmds {
		v, err := c.Result()
		if err != nil {
			return 0, unavailable("preheat", err)
		}
		if c0, _ := v[0].(string); c0 == created {
			t, _ := v[1].(string)
			n, _ := strconv.ParseInt(t, 10, 64)
			totals = append(totals, n)
		}
	}
	if len(totals) == 0 {
		return a.Stock, nil
	}
	for _, n := range totals {
		if n != totals[0] || n < 1 {
			return 0, unavailable("preheat", fmt.Errorf("the shards an earlier open of activity %d left disagree on its stock", a.ID))
		}
	}
	return totals[0], nil
}

// checkPlacement logs when the shards of a sharded activity share masters
// although the cluster has more: they then share those masters' capacity.
func (s *Store) checkPlacement(ctx context.Context, id int64, l *layout) {
	masters, err := s.Placement(ctx, id)
	if err != nil || len(masters) == 0 || s.log == nil {
		return
	}
	distinct := map[string]bool{}
	for _, m := range masters {
		distinct[m] = true
	}
	all, err := s.masters(ctx)
	if err == nil && len(distinct) < min(len(l.shards), all) {
		s.log.Warn("the shards of an activity share Redis masters although the cluster has more",
			"activity", id, "shards", len(l.shards), "masters", len(distinct), "clusterMasters", all)
	}
}

// Placement returns the address of the master that serves each shard of an
// activity, by CLUSTER SHARDS and CLUSTER KEYSLOT; nil on a single node.
func (s *Store) Placement(ctx context.Context, id int64) ([]string, error) {
	cc, ok := s.rdb.(*redis.ClusterClient)
	if !ok {
		return nil, nil
	}
	l, err := s.layoutOf(ctx, id)
	if err != nil {
		return nil, err
	}
	shards, err := cc.ClusterShards(ctx).Result()
	if err != nil {
		return nil, unavailable("placement", err)
	}
	out := make([]string, len(l.shards))
	for j, sh := range l.shards {
		slot, err := cc.ClusterKeySlot(ctx, sh.k.Meta).Result()
		if err != nil {
			return nil, unavailable("placement", err)
		}
		out[j] = masterOf(shards, slot)
	}
	return out, nil
}

// masterOf is the address of the master of a hash slot in CLUSTER SHARDS.
func masterOf(shards []redis.ClusterShard, slot int64) string {
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if int64(r.Start) <= slot && slot <= int64(r.End) {
				for _, n := range sh.Nodes {
					if n.Role == "master" {
						return net.JoinHostPort(n.IP, strconv.FormatInt(n.Port, 10))
					}
				}
			}
		}
	}
	return ""
}

// masters counts the masters of the cluster that serve slots.
func (s *Store) masters(ctx context.Context) (int, error) {
	cc, ok := s.rdb.(*redis.ClusterClient)
	if !ok {
		return 1, nil
	}
	shards, err := cc.ClusterShards(ctx).Result()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, sh := range shards {
		if len(sh.Slots) > 0 {
			n++
		}
	}
	return n, nil
}

// claimSharded claims on the user's home shard; when its numbers ran out,
// it moves free numbers from the shard with the most and claims again. It
// answers sold out only when no shard has a free number and none is in
// flight or on its way.
func (s *Store) claimSharded(ctx context.Context, l *layout, c *activity.Claim) error {
	j := homeOf(c.UserID, len(l.shards))
	c.Shard = j
	err := s.claimOn(ctx, l.shards[j].claim, c)
	for try := 0; errors.Is(err, activity.ErrSoldOut) || errors.Is(err, activity.ErrSlotsInFlight); try++ {
		if try == maxRefills {
			return activity.ErrSlotsInFlight
		}
		moved, busy, rerr := s.refill(ctx, l, j)
		switch {
		case rerr != nil:
			return rerr
		case moved:
		case busy:
			return activity.ErrSlotsInFlight
		default:
			return err
		}
		err = s.claimOn(ctx, l.shards[j].claim, c)
	}
	return err
}

// maxRefills bounds the moves one claim waits for: past them (other joins
// took the numbers moved each time), it answers busy.
const maxRefills = 4

// maxRuns bounds the runs of numbers one move takes: their bits are written
// in one script call on each side.
const maxRuns = 64

// shardState is the live numbers of one shard.
type shardState struct {
	live                              bool
	used, issued, inFlight, stock, on int64 // on: moves not received yet
	total                             int64 // the activity's stock, on the first shard
}

func (st shardState) free() int64 { return st.stock - st.used }

// onEach runs a script on every shard in one pipeline (loading it where
// Redis does not know it) and returns each shard's reply.
func (s *Store) onEach(ctx context.Context, l *layout, sc *redis.Script, keys func(Keys) []string, args ...any) []*redis.Cmd {
	cmds := make([]*redis.Cmd, len(l.shards))
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for j, sh := range l.shards {
			cmds[j] = sc.EvalSha(ctx, p, keys(sh.k), args...)
		}
		return nil
	})
	for j, cmd := range cmds {
		if redis.HasErrorPrefix(cmd.Err(), noScriptError) {
			cmds[j] = sc.Run(ctx, s.rdb, keys(l.shards[j].k), args...)
		}
	}
	return cmds
}

// states reads the live numbers of every shard, in one pipeline.
func (s *Store) states(ctx context.Context, l *layout) ([]shardState, error) {
	cmds := s.onEach(ctx, l, stateScript, func(k Keys) []string { return []string{k.Meta, k.Used, k.Issued, k.Leases, k.Moving} })
	out := make([]shardState, len(l.shards))
	for j, cmd := range cmds {
		res, err := cmd.Int64Slice()
		if err != nil {
			return nil, unavailable("counters", err)
		}
		if len(res) >= 7 && res[0] == 1 {
			out[j] = shardState{live: true, used: res[1], issued: res[2], inFlight: res[3], stock: res[4], on: res[5], total: res[6]}
		}
	}
	return out, nil
}

// refill moves free numbers to shard j from the shard with the most, one
// move at a time per shard in this process (the joins that wait for it
// find the numbers it moved). It reports whether shard j has free numbers
// now, and, when not, whether some may still come: a claim in flight
// anywhere, a move on its way, or a shard without a live state.
func (s *Store) refill(ctx context.Context, l *layout, j int) (moved, busy bool, err error) {
	v, _ := s.refills.LoadOrStore(refillKey{l.id, j}, new(refiller))
	r := v.(*refiller)
	seen := r.moves.Load()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.moves.Load() != seen {
		return true, false, nil // moved while this join waited: claim again
	}
	for range len(l.shards) {
		st, err := s.states(ctx, l)
		if err != nil {
			return false, false, err
		}
		if st[j].live && st[j].free() > 0 {
			return true, false, nil
		}
		donor := -1
		for d := range st {
			if d != j && st[d].live && st[d].free() > 0 && (donor < 0 || st[d].free() > st[donor].free()) {
				donor = d
			}
		}
		if donor < 0 || !st[j].live {
			// Sold out only if the states were read between two moves: the
			// shards' stocks then add up to the activity's (the reads are
			// one per master, not one step; a move between them shows as
			// numbers missing or counted twice).
			var sum int64
			for _, x := range st {
				if !x.live || x.inFlight > 0 || x.on > 0 {
					return false, true, nil
				}
				sum += x.stock
			}
			return false, sum != st[0].total, nil
		}
		n, err := s.move(ctx, l, donor, j, (st[donor].free()+1)/2)
		if err != nil {
			return false, false, err
		}
		if n > 0 {
			r.moves.Add(1)
			return true, false, nil
		}
	}
	return false, true, nil
}

type refillKey struct {
	id    int64
	shard int
}

// refiller lets one join of a shard at a time move numbers to it; the
// joins that waited claim again without reading the states once it moved
// some.
type refiller struct {
	mu    sync.Mutex
	moves atomic.Uint64
}

// move carves up to want free numbers from shard from and gives them to
// shard to; it returns how many moved. A move carved but not received
// (to's master did not answer) stays in from's journal for the job.
func (s *Store) move(ctx context.Context, l *layout, from, to int, want int64) (int64, error) {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	k := l.shards[from].k
	res, err := carveScript.Run(ctx, s.rdb, []string{k.Meta, k.Used, k.Slots, k.Moving, k.Owns, k.State}, want, id, to, maxRuns).Slice()
	if err != nil {
		return 0, unavailable("move", err)
	}
	if len(res) != 6 {
		return 0, nil // from has no live state
	}
	epoch, _ := res[1].(int64)
	n, _ := res[2].(int64)
	runs, _ := res[3].(string)
	seq, _ := res[4].(int64)
	carve, _ := res[5].(int64)
	if n == 0 {
		return 0, nil
	}
	r, err := s.receive(ctx, l.shards[to].k, id, epoch, "", seq, strconv.Itoa(from), carve, runs)
	switch {
	case err != nil:
		return 0, err
	case r == 0:
		return 0, nil // to has no live state: the job gives them when it has
	case r < 0:
		n = 0 // to was rebuilt since: so is from, numbers and journal
	}
	if err := s.rdb.HDel(ctx, k.Moving, id).Err(); err != nil {
		return n, unavailable("move", err)
	}
	return n, nil
}

// receive runs receive.lua on a shard; giver is the number of the shard
// the numbers come from, "" for a raise, and carve the giver's number of
// the carve.
func (s *Store) receive(ctx context.Context, k Keys, id string, epoch int64, total string, seq int64, giver string, carve int64, runs string) (int64, error) {
	args := []any{id, epoch, total, seq, giver, carve}
	for _, f := range strings.Fields(runs) {
		args = append(args, f)
	}
	r, err := receiveScript.Run(ctx, s.rdb, []string{k.Meta, k.Slots, k.Moved, k.Owns, k.State}, args...).Int64()
	if err != nil {
		return 0, unavailable("move", err)
	}
	return r, nil
}

// journalMove is a move in a giver's journal (carve.lua):
// "to:epoch:at/carve:seq:runs".
type journalMove struct {
	to                int
	epoch, seq, carve int64
	at                time.Time
	runs              string
}

// parseMove reads a move of a journal; a move carved before moves were
// numbered has carve 0.
func parseMove(v string) (journalMove, bool) {
	f := strings.SplitN(v, ":", 5)
	if len(f) != 5 {
		return journalMove{}, false
	}
	at, carve, _ := strings.Cut(f[2], "/")
	var m journalMove
	var errs [5]error
	m.to, errs[0] = strconv.Atoi(f[0])
	m.epoch, errs[1] = strconv.ParseInt(f[1], 10, 64)
	sec, err := strconv.ParseInt(at, 10, 64)
	errs[2] = err
	m.seq, errs[3] = strconv.ParseInt(f[3], 10, 64)
	if carve != "" {
		m.carve, errs[4] = strconv.ParseInt(carve, 10, 64)
	}
	if errors.Join(errs[:]...) != nil || m.to < 0 {
		return journalMove{}, false
	}
	m.at, m.runs = time.Unix(sec, 0), f[4]
	return m, true
}

// moveGrace is how old a move must be for the job to finish it: the mover
// had time to.
var moveGrace = 5 * time.Second

// finishMoves gives the numbers of the moves carved more than moveGrace ago
// and not received to the shards they go to (receive.lua takes a move
// once), and drops those carved in an earlier epoch, whose numbers the
// rebuild made again; it returns how many it finished.
func (s *Store) finishMoves(ctx context.Context, l *layout) (int, error) {
	done := 0
	for from, sh := range l.shards {
		moves, err := s.rdb.HGetAll(ctx, sh.k.Moving).Result()
		if err != nil {
			return done, unavailable("move", err)
		}
		for id, v := range moves {
			m, ok := parseMove(v)
			if !ok || m.to >= len(l.shards) || time.Since(m.at) < moveGrace {
				continue
			}
			r, err := s.receive(ctx, l.shards[m.to].k, id, m.epoch, "", m.seq, strconv.Itoa(from), m.carve, m.runs)
			if err != nil {
				return done, err
			}
			if r == 0 {
				continue
			}
			if err := s.rdb.HDel(ctx, sh.k.Moving, id).Err(); err != nil {
				return done, unavailable("move", err)
			}
			done++
		}
	}
	return done, nil
}

// raiseShards gives the numbers past the old stock of a sharded activity to
// its first shard, which keeps the activity's stock: a raise from another
// stock than the one it keeps is refused, so the same numbers are never
// given twice.
func (s *Store) raiseShards(ctx context.Context, l *layout, stock int64) error {
	k := l.shards[0].k
	vals, err := s.rdb.HMGet(ctx, k.Meta, "total", "epoch").Result()
	if err != nil {
		return unavailable("stock", err)
	}
	totalS, _ := vals[0].(string)
	epochS, _ := vals[1].(string)
	total, err1 := strconv.ParseInt(totalS, 10, 64)
	epoch, err2 := strconv.ParseInt(epochS, 10, 64)
	switch {
	case err1 != nil || err2 != nil:
		return activity.ErrNoState
	case stock == total:
		return nil
	case stock < total:
		// A lower is refused: the numbers past the new stock would have to
		// leave their shards.
		st, err := s.states(ctx, l)
		if err != nil {
			return err
		}
		var claimed int64
		for _, x := range st {
			claimed += x.used
		}
		return &activity.StockConflictError{Claimed: claimed, Lowest: total,
			Reason: "the stock of an open activity spread over shards can only be raised"}
	}

	return s.grant(ctx, l, epoch, total, stock)
}

// grant gives the numbers past total up to stock, a raise, to the first
// shard, if the activity's stock it keeps is still total; the raise's id
// names both, so that the same raise twice is taken once and another from
// the same stock is refused.
func (s *Store) grant(ctx context.Context, l *layout, epoch, total, stock int64) error {
	from, to := strconv.FormatInt(total, 10), strconv.FormatInt(stock, 10)
	runs := strconv.FormatInt(total+1, 10) + " " + to
	switch r, err := s.receive(ctx, l.shards[0].k, "raise:"+from+":"+to, epoch, from, 0, "", 0, runs); {
	case err != nil:
		return err
	case r == 0:
		return activity.ErrNoState
	case r < 0:
		return unavailable("stock", fmt.Errorf("the stock changed during the raise (answer %d)", r))
	}
	return nil
}

// byShard returns the indexes in ps of the participations of each shard:
// their users' home shards.
func (s *Store) byShard(l *layout, ps []activity.Participation) [][]int {
	out := make([][]int, len(l.shards))
	for i, p := range ps {
		j := homeOf(p.UserID, len(l.shards))
		out[j] = append(out[j], i)
	}
	return out
}

// lockShards puts a copy of the rebuild's state lock in every shard's tag,
// which the rebuild's scripts check, and returns the function that takes
// them away; it fails when another holder has one.
func (s *Store) lockShards(ctx context.Context, l *layout, held *activity.Lock) (func(), error) {
	var keys []string
	release := func() {
		for _, key := range keys {
			unlockScript.Run(context.WithoutCancel(ctx), s.rdb, []string{key}, held.Token)
		}
	}
	for _, sh := range l.shards {
		ok, err := s.rdb.SetNX(ctx, sh.k.State, held.Token, held.TTL).Result()
		if err != nil {
			release()
			return nil, unavailable("lock", err)
		}
		if !ok {
			v, err := s.rdb.Get(ctx, sh.k.State).Result()
			if err != nil || v != held.Token {
				release()
				return nil, unavailable("rebuild", errors.New("another holder has a shard's state lock"))
			}
		}
		keys = append(keys, sh.k.State)
	}
	return release, nil
}

// rebuildShards makes every shard of a sharded activity again from its
// valid participations: each replayed on its user's home shard, with its
// number, and the free numbers shared out so that each shard gets about as
// many, in runs; then the meta hashes that make the shards live, and the
// route key.
func (s *Store) rebuildShards(ctx context.Context, a *activity.Activity, next func(context.Context) ([]activity.Participation, error), held *activity.Lock) error {
	l := s.layoutFor(a)
	k := len(l.shards)
	lost := errLockLost
	if err := s.list(ctx, a.ID); err != nil {
		return err
	}
	unlock, err := s.lockShards(ctx, l, held)
	if err != nil {
		return err
	}
	defer unlock()
	stamps := make([]string, k)
	for j, sh := range l.shards {
		if stamps[j], err = s.clear(ctx, sh.k, held); err != nil {
			return err
		}
		if stamps[j] == "" {
			return lost
		}
	}
	// The activity's state lock and every shard's copy are renewed with
	// each page: a page may touch a few shards only.
	renew := func() error { return s.renewLocks(ctx, l, held) }
	fenced := func(j int, args ...any) error { return s.rebuildBits(ctx, l.shards[j].k, stamps[j], held, args...) }
	for j := range k {
		if err := fenced(j, "fill", a.Stock); err != nil {
			return err
		}
	}
	ub := shardBuckets(a.Stock, k)
	sh := &shareOut{k: k, chunk: max(64, a.Stock/int64(k*64)), free: make([]int64, k), first: make([]int64, k),
		runs: make([][]any, k), valid: make([]int64, k)}
	flush := func(j int) error {
		if len(sh.runs[j]) == 0 {
			return nil
		}
		err := fenced(j, append([]any{"free"}, sh.runs[j]...)...)
		sh.runs[j] = sh.runs[j][:0]
		return err
	}
	share := func(from, to int64) error {
		for _, j := range sh.add(from, min(to, a.Stock)) {
			if err := flush(j); err != nil {
				return err
			}
		}
		return nil
	}
	last := int64(0)
	for {
		page, err := next(ctx)
		if err != nil {
			return err
		}
		if err := renew(); err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		for _, p := range page {
			if p.Slot > last+1 {
				if err := share(last+1, p.Slot-1); err != nil {
					return err
				}
			}
			last = max(last, p.Slot)
		}
		groups := s.byShard(l, page)
		for j, idx := range groups {
			sh.valid[j] += int64(len(idx))
			for part := range slices.Chunk(idx, 1000) {
				if err := s.replay(ctx, l.shards[j].k, stamps[j], held, ub, page, part); err != nil {
					return err
				}
			}
		}
	}
	if err := share(last+1, a.Stock); err != nil {
		return err
	}
	for j := range k {
		if err := flush(j); err != nil {
			return err
		}
	}
	for j, shard := range l.shards {
		base := int64(0)
		if sh.free[j] > 0 {
			base = sh.first[j] - sh.valid[j] - 1
		}
		m := &shardMeta{stock: sh.valid[j] + sh.free[j], base: base, size: a.Stock, buckets: ub}
		written, err := s.writeMeta(ctx, shard.k, a, boolArg(a.State == activity.StateOpen), stamps[j], held, m)
		if err != nil {
			return err
		}
		if !written {
			return lost
		}
	}
	return s.writeRoute(ctx, a.ID, k)
}

// renewLocks renews the state lock of a rebuild, held, and every shard's
// copy of it; it fails when one is not held's any more.
func (s *Store) renewLocks(ctx context.Context, l *layout, held *activity.Lock) error {
	for _, key := range append([]string{s.tag(l.id) + held.Name}, shardLocks(l)...) {
		n, err := renewScript.Run(ctx, s.rdb, []string{key}, held.Token, held.TTL.Milliseconds()).Int()
		if err != nil {
			return unavailable("rebuild", err)
		}
		if n != 1 {
			return errLockLost
		}
	}
	return nil
}

// rebuildBits runs rebuild_bits.lua on a shard being rebuilt (its stamp
// from clear), while held still holds.
func (s *Store) rebuildBits(ctx context.Context, k Keys, stamp string, held *activity.Lock, args ...any) error {
	r, err := bitsScript.Run(ctx, s.rdb, []string{k.Slots, k.State, k.Owns, k.Meta, k.Moved},
		append([]any{stamp, held.Token, held.TTL.Milliseconds()}, args...)...).Int()
	if err != nil {
		return unavailable("rebuild", err)
	}
	if r < 0 {
		return errLockLost
	}
	return nil
}

// errLockLost fails a rebuild whose state lock was lost, or whose master
// restarted, on the way: it wrote nothing more.
var errLockLost = unavailable("rebuild", errors.New("the state lock was lost, or Redis restarted, during the rebuild"))

// shardLocks returns the keys of the shards' copies of the state lock.
func shardLocks(l *layout) []string {
	out := make([]string, len(l.shards))
	for j, sh := range l.shards {
		out[j] = sh.k.State
	}
	return out
}

// shareOut shares the free numbers of a rebuild out over the shards: each
// run cut in pieces of at most chunk, each piece to the shard with the
// fewest free numbers so far.
type shareOut struct {
	k     int
	chunk int64
	free  []int64 // free numbers given to each shard
	first []int64 // the first free number of each
	valid []int64 // valid participations replayed on each
	runs  [][]any // runs given to each, not written yet
}

// add gives the numbers from..to out and returns the shards whose runs are
// due to be written.
func (o *shareOut) add(from, to int64) []int {
	var due []int
	for from <= to {
		j := 0
		for x := range o.k {
			if o.free[x] < o.free[j] {
				j = x
			}
		}
		end := min(to, from+o.chunk-1)
		if o.free[j] == 0 {
			o.first[j] = from
		}
		o.free[j] += end - from + 1
		o.runs[j] = append(o.runs[j], from, end)
		if len(o.runs[j]) >= 2*500 && !slices.Contains(due, j) {
			due = append(due, j)
		}
		from = end + 1
	}
	return due
}

// replay replays the valid participations ps[i] for i in idx on one shard.
func (s *Store) replay(ctx context.Context, k Keys, stamp string, held *activity.Lock, ub int64, ps []activity.Participation, idx []int) error {
	args := make([]any, 0, 4+3*len(idx))
	args = append(args, stamp, held.Token, held.TTL.Milliseconds(), ub)
	for _, i := range idx {
		p := ps[i]
		args = append(args, p.Slot, p.UserID, idemField(p.UserID, p.IdempotencyKey))
	}
	r, err := replayScript.Run(ctx, s.rdb, []string{k.Used, k.Issued, k.Users, k.Slots, k.Idem, k.State, k.Buckets, k.Owns},
		args...).Int()
	if err != nil {
		return unavailable("rebuild", err)
	}
	if r < 0 {
		return unavailable("rebuild", errors.New("the state lock was lost, or Redis restarted, during the rebuild"))
	}
	return nil
}

// routes returns the layouts of the activities ids: from the key cache,
// and for the others from their route keys, read in one pipeline (and
// kept).
func (s *Store) routes(ctx context.Context, ids []int64) (map[int64]*layout, error) {
	out := make(map[int64]*layout, len(ids))
	var missing []int64
	now := time.Now()
	for _, id := range ids {
		if l := s.keys[uint64(id)%uint64(len(s.keys))].Load(); l != nil && l.id == id && now.Before(l.expires) {
			out[id] = l
		} else if _, ok := out[id]; !ok {
			out[id] = nil
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	routes := make([]*redis.StringCmd, len(missing))
	copies := make([]*redis.StringCmd, len(missing))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range missing {
			routes[i] = p.Get(ctx, s.routeKey(id))
			copies[i] = p.HGet(ctx, s.shardsKey(), strconv.FormatInt(id, 10))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable("route", err)
	}
	for i, id := range missing {
		l := s.routed(id, routes[i], copies[i])
		s.keep(l)
		out[id] = l
	}
	return out, nil
}

// HomeShard is the shard of an activity of the given number of shards on
// which a user's claims are held: where an operator finds the user's
// entry, and how a test picks users of one shard (activity.HomeShard).
func HomeShard(userID string, shards int) int { return homeOf(userID, shards) }

// Preheated reports whether Redis keeps a state made for activity a (its
// creation time in the meta hash) under its own tag, a's shards, or the
// shards of the layout Redis or this store keeps for its ID
// (activity.SlotStore).
func (s *Store) Preheated(ctx context.Context, a *activity.Activity) (bool, error) {
	old, err := s.route(ctx, a.ID)
	if err != nil {
		return false, err
	}
	var metas []string
	for _, ks := range [][]Keys{{s.KeysOf(a.ID)}, s.ShardKeys(a.ID, max(a.Shards, 1)), keysOf(old)} {
		for _, k := range ks {
			if !slices.Contains(metas, k.Meta) {
				metas = append(metas, k.Meta)
			}
		}
	}
	cmds := make([]*redis.StringCmd, len(metas))
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, m := range metas {
			cmds[i] = p.HGet(ctx, m, "created")
		}
		return nil
	})
	created := strconv.FormatInt(a.CreatedAt.UnixMilli(), 10)
	for _, c := range cmds {
		// A shard whose master does not answer may keep one: not known.
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return false, unavailable("preheated", err)
		}
		if c.Val() == created {
			return true, nil
		}
	}
	return false, nil
}
