// Package stock is the Redis slot engine: it preheats an activity's stock and
// claims, confirms and releases numbered slots with Lua scripts, one round
// trip each. Every key of an activity carries the activity's hash tag, so the
// scripts run unchanged on a single node and on Redis Cluster.
package stock

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"seckill/activity"
)

var (
	//go:embed fence.lua
	fenceSource string
	//go:embed claim.lua
	claimSource string
	//go:embed confirm.lua
	confirmSource string
	//go:embed giveback.lua
	giveBackSource string
	//go:embed release.lua
	releaseSource string
	//go:embed reap.lua
	reapSource string
	//go:embed settle.lua
	settleSource string
	//go:embed preheat.lua
	preheatSource string
	//go:embed close.lua
	closeSource string
	//go:embed unlock.lua
	unlockSource string
	//go:embed rebuild_clear.lua
	rebuildClearSource string
	//go:embed rebuild_add.lua
	rebuildAddSource string
	//go:embed clock.lua
	clockSource string
	//go:embed state.lua
	stateSource string
	//go:embed lookup.lua
	lookupSource string
	//go:embed bucket.lua
	bucketSource string
	//go:embed record.lua
	recordSource string
	//go:embed forget.lua
	forgetSource string
	//go:embed lease.lua
	leaseSource string
	//go:embed setstock.lua
	setStockSource string
	//go:embed bits.lua
	bitsSource string
	//go:embed carve.lua
	carveSource string
	//go:embed receive.lua
	receiveSource string
	//go:embed rebuild_bits.lua
	rebuildBitsSource string
	//go:embed renew.lua
	renewSource string
	//go:embed hold.lua
	holdSource string

	// The scripts that read or change the live state carry the replication-id
	// fence (fence.lua) in front of them, those that touch a user's entries
	// the buckets (bucket.lua), and those that write or read a lease, a
	// token or an idempotency answer the records (record.lua).
	claimScript   = script(fenceSource, bucketSource, recordSource, claimSource)
	confirmScript = script(fenceSource, bucketSource, recordSource, confirmSource)
	settleScript  = script(fenceSource, recordSource, settleSource)
	preheatScript = script(fenceSource, bitsSource, preheatSource)
	stateScript   = script(fenceSource, stateSource)
	lookupScript  = script(fenceSource, lookupSource)
	stockScript   = script(fenceSource, setStockSource)
	// Giving back needs no fence: a state that is not live is only ever
	// cleared and rebuilt.
	releaseScript = script(bucketSource, recordSource, giveBackSource, releaseSource)
	reapScript    = script(bucketSource, recordSource, giveBackSource, reapSource)
	forgetScript  = script(fenceSource, bucketSource, recordSource, forgetSource)
	closeScript   = script(closeSource)
	clockScript   = script(clockSource)
	clearScript   = script(fenceSource, recordSource, rebuildClearSource)
	unlockScript  = script(unlockSource)
	leaseScript   = script(leaseSource)
	replayScript  = script(fenceSource, bucketSource, rebuildAddSource)
	// The moves of numbers between the shards of a sharded activity, and
	// the bitmaps of its rebuild (shard.go).
	carveScript   = script(fenceSource, bitsSource, carveSource)
	receiveScript = script(fenceSource, bitsSource, receiveSource)
	bitsScript    = script(fenceSource, bitsSource, rebuildBitsSource)
	renewScript   = script(renewSource)
	holdScript    = script(fenceSource, holdSource)
)

// script is the script made of the given sources, in order.
func script(sources ...string) *redis.Script {
	return redis.NewScript(strings.Join(sources, ""))
}

// Codes returned by claim.lua.
const (
	claimOK       = 1
	claimSoldOut  = 2
	claimLimit    = 3
	claimNotOpen  = 4
	claimNoState  = 5
	claimNoNumber = 6
	claimReplay   = 7
	claimInFlight = 8
	claimTaken    = 9
)

// DefaultPrefix is the key prefix of the service.
const DefaultPrefix = "seckill"

// DefaultLease is how long a claim may stay in flight before the slot store
// may give it back.
const DefaultLease = 15 * time.Second

// Store is the slot engine. It implements activity.SlotStore.
type Store struct {
	rdb    redis.UniversalClient
	batch  *batcher
	run    runner // the batcher's, but for a benchmark
	prefix string
	lease  time.Duration
	keys   keyCache
	log    *slog.Logger
	// refills holds a mutex per shard of a sharded activity that is being
	// refilled (Store.refill).
	refills sync.Map
	// sharded holds the number of shards of each sharded activity this
	// store has learned of (Store.routed).
	sharded sync.Map
}

// keyCache keeps the layouts of the activities joined lately, so that a
// join does not build the same dozen strings twice nor read the route key:
// one entry per activity id modulo its size, the last one asked for (the
// hot activity of a flash sale stays; ids made up by a client only take
// turns in a fixed space).
type keyCache [256]atomic.Pointer[layout]

// runner runs one script call of a join and returns its reply.
type runner func(ctx context.Context, s *redis.Script, keys []string, args ...any) *redis.Cmd

// Options tune a Store.
type Options struct {
	// Prefix starts every key; DefaultPrefix when empty. Tests use their own.
	Prefix string
	// Lease is how long a claim may stay in flight; DefaultLease when zero.
	Lease time.Duration
	// Log gets the warnings of the store (the shards of an activity on
	// fewer masters than they could be); none when nil.
	Log *slog.Logger
}

// New returns a Store on a single-node or cluster client.
func New(rdb redis.UniversalClient, o Options) *Store {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	b := newBatcher(rdb)
	return &Store{rdb: rdb, batch: b, run: b.run, prefix: o.Prefix, lease: o.Lease, log: o.Log}
}

// Keys are the Redis keys of one activity; they share its hash tag.
type Keys struct {
	Meta, Used, Issued, Slots, Leases, Confirmed, Held string
	// Users and Idem, followed by a bucket number, are the buckets of the
	// users hash and of the idempotency hash (bucket.lua); UserKey is the
	// bucket of a user. Buckets counts the buckets to delete with the state.
	Users, Idem, Buckets string
	// Legacy are keys of earlier layouts, only ever deleted.
	Legacy []string
	// State is the activity's state lock (see Store.Lock).
	State string
	// Job is the lease of the activity's periodic work (see Store.Lease).
	Job string
	// LockPrefix followed by the slot number is the slot's lock key,
	// "seckill:{42}:lock:42_17".
	LockPrefix string
	// Moving is the journal of the numbers a shard of a sharded activity
	// gives another (carve.lua), Moved the moves it received (receive.lua).
	Moving, Moved string
	// Owns is the bitmap of the numbers a shard owns, free, claimed or
	// issued: what a rebuild of another shard alone leaves to this one.
	Owns string
}

// KeysOf returns the keys of activity id. It is exported, with Keys, as the
// one statement of the key layout: for operators reading Redis, and for the
// tests of the packages above stock (activity, job, cmd/seckill), which
// look at or break an activity's keys; within stock every script call gets
// its keys from it.
func (s *Store) KeysOf(id int64) Keys {
	return s.keysAt(s.tag(id), strconv.FormatInt(id, 10))
}

// keysAt returns the keys of a state under a tag: an activity's, or one
// shard's of a sharded activity (ShardKeys); ids is the activity's ID.
func (s *Store) keysAt(tag, ids string) Keys {
	return Keys{
		Meta:       tag + "meta",
		Used:       tag + "used",
		Issued:     tag + "issued",
		Slots:      tag + "slots",
		Leases:     tag + "leases",
		Confirmed:  tag + "confirmed",
		Held:       tag + "held",
		Users:      tag + "u:",
		Idem:       tag + "i:",
		Buckets:    tag + "buckets",
		Legacy:     []string{tag + "free", tag + "users", tag + "idem"},
		State:      tag + "state",
		Job:        tag + "job",
		LockPrefix: tag + "lock:" + ids + "_",
		Moving:     tag + "moving",
		Moved:      tag + "moved",
		Owns:       tag + "owns",
	}
}

// tag is the start of every key of activity id: the prefix and the hash
// tag that keeps them on one Redis Cluster slot.
func (s *Store) tag(id int64) string { return s.prefix + ":{" + strconv.FormatInt(id, 10) + "}:" }

// Lock returns the lock key of a slot.
func (k Keys) Lock(slot int64) string { return k.LockPrefix + strconv.FormatInt(slot, 10) }

// UserKey returns the key of the users bucket that holds userID's entry
// (under userField) in a state of the given number of buckets.
func (k Keys) UserKey(userID string, buckets int64) string {
	return k.Users + strconv.FormatInt(bucketOf(userID, buckets), 10)
}

// bucketOf is the bucket of user_entry in bucket.lua: the first 32 bits of
// the SHA-1 of userID modulo the number of buckets.
func bucketOf(userID string, buckets int64) int64 {
	sum := sha1.Sum([]byte(userID))
	return int64(binary.BigEndian.Uint32(sum[:4])) % buckets
}

// userField is the field that stands for userID in its bucket (user_entry
// in bucket.lua): userID itself when shorter than 32 characters, else the
// first 32 hex digits of its SHA-1, so that no field is too long for a
// listpack.
func userField(userID string) string { return shortened(userID, 32) }

// shortened returns s when shorter than n characters, else the first n hex
// digits of its SHA-1: exactly n characters, so never another such s.
func shortened(s string, n int) string {
	if len(s) < n {
		return s
	}
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}

// UserBuckets is the number of user buckets of a state of the given stock:
// at most 64 entries a bucket on average (a user holding at least one
// slot), so that each stays a listpack under Redis's default
// hash-max-listpack-entries of 128.
func UserBuckets(stock int64) int64 {
	return max(1, (stock+63)/64)
}

// clearPage is how many user buckets one call of rebuild_clear.lua deletes:
// a few milliseconds of Redis.
const clearPage = 2000

func unavailable(op string, err error) error {
	return activity.Unavailable("redis", fmt.Errorf("%s: %w", op, err))
}

// Preheat loads an activity's stock and opens it for claims.
// State left under the same ID by another activity (a database that was
// dropped and created again while Redis kept its keys) is cleared first: it
// is told apart by the creation time kept in the meta hash. So is a state
// that is not live (stamped by another Redis process): an activity is
// preheated once, as it opens, so nothing was sold from it.
func (s *Store) Preheat(ctx context.Context, a *activity.Activity) error {
	if a.Shards > 1 {
		return s.preheatShards(ctx, a)
	}
	if err := s.clearOthers(ctx, a); err != nil {
		return err
	}
	k := s.layoutFor(a).shards[0].k
	if err := s.list(ctx, a.ID); err != nil {
		return err
	}
	return s.preheatOne(ctx, k, a, nil)
}

// clearOther clears the state under k when another activity of the same ID
// left it.
func (s *Store) clearOther(ctx context.Context, k Keys, a *activity.Activity) error {
	created, err := s.rdb.HGet(ctx, k.Meta, "created").Result()
	switch {
	case errors.Is(err, redis.Nil):
	case err != nil:
		return unavailable("preheat", err)
	case created != strconv.FormatInt(a.CreatedAt.UnixMilli(), 10):
		if _, err := s.clear(ctx, k, nil); err != nil {
			return err
		}
		// The counted joins live under the first shard's tag: this one's,
		// if it was (the other activity's layout says which, not a's).
		return s.dropSaleAt(ctx, k)
	}
	return nil
}

// preheatOne writes the state under k, a shard's with m; a state there that
// is not live is cleared first.
func (s *Store) preheatOne(ctx context.Context, k Keys, a *activity.Activity, m *shardMeta) error {
	written, err := s.writeMeta(ctx, k, a, "1", "", nil, m)
	if err != nil || written {
		return err
	}
	if _, err := s.clear(ctx, k, nil); err != nil {
		return err
	}
	if written, err = s.writeMeta(ctx, k, a, "1", "", nil, m); err == nil && !written {
		err = unavailable("preheat", errors.New("the state was not written"))
	}
	return err
}

// clear deletes every key of an activity, with the locks of its leased
// claims, its user buckets a page at a time. It returns the stamp of a live
// state on the master that did it (fence.lua). With held, a rebuild's state
// lock, it acts only while held is still held and renews it, and returns ""
// when the lock was lost or Redis restarted on the way.
func (s *Store) clear(ctx context.Context, k Keys, held *activity.Lock) (string, error) {
	token, ttl := "", int64(0)
	if held != nil {
		token, ttl = held.Token, held.TTL.Milliseconds()
	}
	keys := append([]string{k.Leases, k.LockPrefix, k.State, k.Buckets, k.Users, k.Idem,
		k.Meta, k.Used, k.Issued, k.Slots, k.Confirmed, k.Held, k.Moving, k.Moved, k.Owns}, k.Legacy...)
	stamp := ""
	for {
		res, err := clearScript.Run(ctx, s.rdb, keys, token, ttl, clearPage).Slice()
		if err != nil {
			return "", unavailable("clear", err)
		}
		id, _ := res[0].(string)
		if id == "" || (held != nil && stamp != "" && id != stamp) {
			// The rebuild lost its state lock, or Redis restarted half way
			// through it.
			return "", nil
		}
		stamp = id
		if left, _ := res[1].(int64); left == 0 {
			return stamp, nil
		}
	}
}

// writeMeta writes the meta hash, stamped with the replication ID of the
// master. With held (the end of a rebuild, whose clear answered id), the
// epoch is set even over one, and nothing is written unless the rebuild
// still holds its state lock on the same master history. It reports false
// when nothing was written: a preheat found a state that is not live, or a
// rebuild lost its lock or its master. With m, it writes a shard of a
// sharded activity.
func (s *Store) writeMeta(ctx context.Context, k Keys, a *activity.Activity, open string, id string, held *activity.Lock, m *shardMeta) (bool, error) {
	epoch := max(a.Epoch, 1)
	token := ""
	if held != nil {
		token = held.Token
	}
	args := []any{a.Stock, a.PerUserLimit, a.BeginAt.UnixMilli(), a.EndAt.UnixMilli(), open, epoch, boolArg(held != nil),
		a.CreatedAt.UnixMilli(), id, token, UserBuckets(a.Stock), ""}
	if m != nil {
		args[0], args[10], args[11] = m.stock, m.buckets, m.base
		args = append(args, m.size)
		for _, r := range m.runs {
			args = append(args, r)
		}
	}
	n, err := preheatScript.Run(ctx, s.rdb, []string{k.Meta, k.Used, k.Issued, k.State, k.Buckets, k.Slots, k.Owns}, args...).Int()
	if err != nil {
		return false, unavailable("preheat", err)
	}
	if n < 0 {
		used, _ := s.rdb.Get(ctx, k.Used).Int64()
		return false, &activity.StockConflictError{Claimed: used, Lowest: used}
	}
	return n == 1, nil
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Close stops claims on an activity at once.
func (s *Store) Close(ctx context.Context, id int64) error {
	l, err := s.layoutOf(ctx, id)
	if err != nil {
		return err
	}
	for _, sh := range l.shards {
		if err := closeScript.Run(ctx, s.rdb, []string{sh.k.Meta}).Err(); err != nil {
			return unavailable("close", err)
		}
	}
	return nil
}

// Claim takes a free slot for c.UserID and sets c.Slot and c.Epoch. A retry
// with the idempotency key of a confirmed join returns a *activity.Replay
// error holding the first answer.
func (s *Store) Claim(ctx context.Context, c *activity.Claim) error {
	l, err := s.layoutOf(ctx, c.ActivityID)
	if err != nil {
		return err
	}
	err = s.claimIn(ctx, l, c)
	if errors.Is(err, activity.ErrNoState) && (l.sharded() || !l.routed && time.Since(l.read) > rerouteAfter) {
		// Maybe laid out otherwise since the layout was read: opened
		// sharded, or another activity of the same ID.
		if nl, rerr := s.route(ctx, c.ActivityID); rerr == nil && len(nl.shards) != len(l.shards) {
			return s.claimIn(ctx, nl, c)
		}
	}
	return err
}

// claimIn claims in the layout l.
func (s *Store) claimIn(ctx context.Context, l *layout, c *activity.Claim) error {
	if l.sharded() {
		return s.claimSharded(ctx, l, c)
	}
	c.Shard = 0
	return s.claimOn(ctx, l.shards[0].claim, c)
}

// claimOn runs claim.lua with the given keys of one state.
func (s *Store) claimOn(ctx context.Context, keys []string, c *activity.Claim) error {
	res, err := s.run(ctx, claimScript, keys,
		c.UserID, c.ClaimID, s.lease.Milliseconds(), idemField(c.UserID, c.IdempotencyKey)).Slice()
	if err != nil {
		return unavailable("claim", err)
	}
	if len(res) == 0 {
		return unavailable("claim", errors.New("empty reply"))
	}
	code, _ := res[0].(int64)
	switch code {
	case claimOK:
		if len(res) != 5 {
			return unavailable("claim", fmt.Errorf("unexpected reply %v", res))
		}
		c.Slot, _ = res[1].(int64)
		c.Epoch, _ = res[2].(int64)
		c.Seq, _ = res[3].(int64)
		held, _ := res[4].(string)
		c.Held = activity.ParseSeqs(held)
		return nil
	case claimSoldOut:
		return activity.ErrSoldOut
	case claimTaken:
		return activity.ErrSlotsInFlight
	case claimLimit:
		if len(res) != 3 {
			return unavailable("claim", fmt.Errorf("unexpected reply %v", res))
		}
		held, _ := res[1].(string)
		n, _ := res[2].(int64)
		return &activity.LimitError{Held: parseHeld(c.ActivityID, c.UserID, held), Settled: int(n)}
	case claimNotOpen:
		return activity.ErrNotOpen
	case claimNoState:
		return activity.ErrNoState
	case claimNoNumber:
		return fmt.Errorf("%w: no free slot number although the counter has room (activity %d)", activity.ErrUnavailable, c.ActivityID)
	case claimReplay:
		v, _ := res[1].(string)
		if v == "s" {
			return &activity.Replay{Settled: true}
		}
		t, ok := parseToken(strings.TrimPrefix(v, "f:"))
		if !ok {
			return unavailable("claim", fmt.Errorf("bad idempotency record %q", v))
		}
		return &activity.Replay{Participation: t.participation(c.ActivityID, c.UserID, t.id)}
	case claimInFlight:
		return fmt.Errorf("%w: a join with this idempotency key is still in flight", activity.ErrUnavailable)
	default:
		return unavailable("claim", fmt.Errorf("unexpected code %d", code))
	}
}

// idemField is the field of an idempotency key in its user's bucket: the
// user's field, ":" and the key shortened to 24 characters, so that it stays
// within the 64 bytes of a listpack entry (the user's field has no colon,
// so the first one ends it).
func idemField(userID, key string) string {
	if key == "" {
		return ""
	}
	return userField(userID) + ":" + shortened(key, 24)
}

// token is a confirmed claim as the scripts keep it until its record is
// settled (token in record.lua): "slot:id:issuedAt:epoch", where id is the
// claimId in the held hash, whose field is the userId, and in the answer
// to a retry ("f:" and the token); the userId in the confirmed hash, whose
// field is the claimId.
type token struct {
	slot     int64
	id       string
	issuedAt time.Time
	epoch    int64
}

// parseToken reads a token; false when v is not one.
func parseToken(v string) (token, bool) {
	f := strings.Split(v, ":")
	if len(f) != 4 {
		return token{}, false
	}
	slot, err1 := strconv.ParseInt(f[0], 10, 64)
	ms, err2 := strconv.ParseInt(f[2], 10, 64)
	epoch, err3 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return token{}, false
	}
	return token{slot: slot, id: f[1], issuedAt: time.UnixMilli(ms).UTC(), epoch: epoch}, true
}

// participation is the valid participation the token stands for, without
// its signed token: the Service signs it.
func (t token) participation(activityID int64, userID, claimID string) activity.Participation {
	return activity.Participation{ActivityID: activityID, Slot: t.slot, UserID: userID, ClaimID: claimID,
		Epoch: t.epoch, IssuedAt: t.issuedAt, Status: activity.RecordValid}
}

// parseHeld reads the tokens a user holds, "t1 t2 ..." of the held hash,
// into participations; the Service signs them.
func parseHeld(activityID int64, userID, held string) []activity.Participation {
	var out []activity.Participation
	for _, h := range strings.Fields(held) {
		if t, ok := parseToken(h); ok {
			out = append(out, t.participation(activityID, userID, t.id))
		}
	}
	return out
}

// Confirm turns a claim into an issued slot. It returns ErrLeaseLost when the
// claim is no longer held or its lock expired.
func (s *Store) Confirm(ctx context.Context, c activity.Claim, issuedAt time.Time) error {
	k, err := s.claimKeys(ctx, c)
	if err != nil {
		return err
	}
	n, err := s.run(ctx, confirmScript,
		[]string{k.Leases, k.Lock(c.Slot), k.Slots, k.Issued, k.Confirmed, k.Meta, k.Held, k.Idem},
		c.Slot, c.ClaimID, c.UserID, issuedAt.UnixMilli(), c.Epoch, idemField(c.UserID, c.IdempotencyKey), c.Seq).Int64()
	if err != nil {
		return unavailable("confirm", err)
	}
	if n != 1 {
		return activity.ErrLeaseLost
	}
	return nil
}

// Release gives a claim back; it does nothing when the claim is not held.
func (s *Store) Release(ctx context.Context, c activity.Claim) error {
	k, err := s.claimKeys(ctx, c)
	if err != nil {
		return err
	}
	err = s.run(ctx, releaseScript,
		[]string{k.Leases, k.Lock(c.Slot), k.Used, k.Users, k.Slots, k.Meta},
		c.Slot, c.ClaimID, c.UserID, c.Seq).Err()
	if err != nil {
		return unavailable("release", err)
	}
	return nil
}

// claimKeys returns the keys of the state that holds claim c: its shard's.
func (s *Store) claimKeys(ctx context.Context, c activity.Claim) (*Keys, error) {
	l, err := s.layoutOf(ctx, c.ActivityID)
	if err != nil {
		return nil, err
	}
	if c.Shard < 0 || c.Shard >= len(l.shards) {
		return nil, unavailable("claim", fmt.Errorf("activity %d has no shard %d", c.ActivityID, c.Shard))
	}
	return &l.shards[c.Shard].k, nil
}

// Reap gives back up to limit claims whose lease ran out, on each shard,
// and finishes the moves of numbers between shards that their movers left.
func (s *Store) Reap(ctx context.Context, id int64, limit int) (int, error) {
	l, err := s.layoutOf(ctx, id)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, sh := range l.shards {
		k := sh.k
		n, err := reapScript.Run(ctx, s.rdb, []string{k.Leases, k.LockPrefix, k.Used, k.Users, k.Slots, k.Meta}, limit).Int()
		if err != nil {
			return total, unavailable("reap", err)
		}
		total += n
	}
	if l.sharded() {
		if _, err := s.finishMoves(ctx, l); err != nil {
			return total, err
		}
	}
	return total, nil
}

// Settle tells what became of the claims of pending participations of one
// activity.
func (s *Store) Settle(ctx context.Context, id int64, ps []activity.Participation) ([]activity.Outcome, error) {
	l, err := s.layoutOf(ctx, id)
	if err != nil {
		return nil, err
	}
	out := make([]activity.Outcome, len(ps))
	for j, idx := range s.byShard(l, ps) {
		if len(idx) == 0 {
			continue
		}
		k := l.shards[j].k
		args := make([]any, 0, 5*len(idx))
		for _, i := range idx {
			p := ps[i]
			args = append(args, p.Slot, p.ClaimID, p.UserID, max(p.Epoch, 1), p.Seq)
		}
		codes, err := settleScript.Run(ctx, s.rdb, []string{k.Leases, k.Confirmed, k.Meta}, args...).Int64Slice()
		if err != nil {
			return nil, unavailable("settle", err)
		}
		if len(codes) != len(idx) {
			return nil, unavailable("settle", fmt.Errorf("%d answers for %d claims", len(codes), len(idx)))
		}
		for n, c := range codes {
			out[idx[n]] = outcome(c)
		}
	}
	return out, nil
}

// outcome is the Outcome of a code of settle.lua.
func outcome(c int64) activity.Outcome {
	switch c {
	case 1:
		return activity.OutcomeConfirmed
	case 0:
		return activity.OutcomeInFlight
	case -1:
		return activity.OutcomeGivenBack
	default:
		return activity.OutcomeUnknown
	}
}

// Forget drops what Redis keeps of confirmed claims whose records are valid
// in MySQL, but for a count in the user's entry and the slot's bit
// (forget.lua).
func (s *Store) Forget(ctx context.Context, id int64, ps []activity.Participation) error {
	if len(ps) == 0 {
		return nil
	}
	l, err := s.layoutOf(ctx, id)
	if err != nil {
		return err
	}
	for j, idx := range s.byShard(l, ps) {
		k := l.shards[j].k
		for page := range slices.Chunk(idx, 1000) {
			args := make([]any, 0, 3*len(page))
			for _, i := range page {
				p := ps[i]
				args = append(args, p.ClaimID, p.Seq, idemField(p.UserID, p.IdempotencyKey))
			}
			err := forgetScript.Run(ctx, s.rdb, []string{k.Confirmed, k.Held, k.Users, k.Idem, k.Meta}, args...).Err()
			if err != nil {
				return unavailable("forget", err)
			}
		}
	}
	return nil
}

// Confirmed returns a confirmed claim whose record is not settled yet. It
// returns activity.ErrNoState when Redis holds no live state for the
// activity: then nothing can be concluded.
func (s *Store) Confirmed(ctx context.Context, id int64, claimID string) (*activity.Participation, bool, error) {
	l, err := s.layoutOf(ctx, id)
	if err != nil {
		return nil, false, err
	}
	// The token does not say its user, so each shard is asked; a shard
	// without a live state may hold it.
	var found []any
	lost := false
	for _, cmd := range s.onEach(ctx, l, lookupScript, func(k Keys) []string { return []string{k.Confirmed, k.Meta} }, claimID) {
		res, err := cmd.Slice()
		if err != nil {
			return nil, false, unavailable("confirmed", err)
		}

		code, _ := res[0].(int64)
		if code == 2 {
			lost = true
		}
		if code == 1 && len(res) == 2 {
			found = res
			break
		}
	}
	switch {
	case found == nil && lost:
		return nil, false, activity.ErrNoState
	case found == nil:
		return nil, false, nil
	}
	v, _ := found[1].(string)
	t, ok := parseToken(v)
	if !ok {
		return nil, false, nil
	}
	p := t.participation(id, t.id, claimID)
	return &p, true, nil
}

// Rebuild replaces an activity's state with one made from its valid
// participations, under a.Epoch. Claims answer "no state" until it is done.
// Every step writes only while held, the activity's state lock, still holds
// this rebuild's token (and renews it), on the master history the rebuild
// began on: if Redis restarts half way, or the lock is lost to another
// rebuilder, nothing more is written, nothing of it becomes live, and it
// fails.
func (s *Store) Rebuild(ctx context.Context, a *activity.Activity, next func(context.Context) ([]activity.Participation, error), held *activity.Lock) error {
	k := s.KeysOf(a.ID)
	if held == nil || held.Name != "state" {
		return errors.New("stock: a rebuild needs the activity's state lock")
	}
	if a.Shards > 1 {
		return s.rebuildShards(ctx, a, next, held)
	}
	if err := s.list(ctx, a.ID); err != nil {
		return err
	}
	lost := unavailable("rebuild", errors.New("the state lock was lost, or Redis restarted, during the rebuild"))
	id, err := s.clear(ctx, k, held)
	if err != nil {
		return err
	}
	if id == "" {
		return lost
	}
	const chunk = 1000
	for {
		page, err := next(ctx)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		for valid := range slices.Chunk(page, chunk) {
			args := make([]any, 0, 4+3*len(valid))
			args = append(args, id, held.Token, held.TTL.Milliseconds(), UserBuckets(a.Stock))
			for _, p := range valid {
				args = append(args, p.Slot, p.UserID, idemField(p.UserID, p.IdempotencyKey))
			}
			r, err := replayScript.Run(ctx, s.rdb, []string{k.Used, k.Issued, k.Users, k.Slots, k.Idem, k.State, k.Buckets},
				args...).Int()
			if err != nil {
				return unavailable("rebuild", err)
			}
			if r < 0 {
				return lost
			}
		}
	}
	written, err := s.writeMeta(ctx, k, a, boolArg(a.State == activity.StateOpen), id, held, nil)
	if err == nil && !written {
		err = lost
	}
	return err
}

// Lock takes a named lock of an activity for ttl ("rebuild": one instance
// rebuilds it at a time; "state": opens, closes and rebuilds take turns);
// it returns nil when another holds it. Release releases it if it is still
// ours.
func (s *Store) Lock(ctx context.Context, id int64, name string, ttl time.Duration) (*activity.Lock, error) {
	key := s.tag(id) + name
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	val := hex.EncodeToString(b)
	ok, err := s.rdb.SetNX(ctx, key, val, ttl).Result()
	if err != nil {
		return nil, unavailable("lock", err)
	}
	if !ok {
		return nil, nil
	}
	release := func() { unlockScript.Run(context.WithoutCancel(ctx), s.rdb, []string{key}, val) }
	return &activity.Lock{Name: name, Token: val, TTL: ttl, Release: release}, nil
}

// Lease takes or renews holder's lease on the periodic work of an activity
// (scope its ID), or on the work of no one activity (scope 0), for ttl. It
// reports whether holder has the lease now; false when another holder's
// lease has not run out. A ttl of zero gives holder's lease back. An activity's lease lives in its hash tag, on the
// master of its keys.
func (s *Store) Lease(ctx context.Context, scope int64, holder string, ttl time.Duration) (bool, error) {
	key := s.prefix + ":job"
	if scope != 0 {
		key = s.KeysOf(scope).Job
	}
	n, err := leaseScript.Run(ctx, s.rdb, []string{key}, holder, ttl.Milliseconds()).Int()
	if err != nil {
		return false, unavailable("lease", err)
	}
	return n == 1, nil
}

// WorkLease is Lease for a share of the periodic work that is not an
// activity's, named by name (e.g. "tokens", the token publisher's): it
// takes or renews holder's lease for ttl and reports whether holder has
// it now; a ttl of zero gives holder's lease back.
func (s *Store) WorkLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	n, err := leaseScript.Run(ctx, s.rdb, []string{s.prefix + ":job:" + name}, holder, ttl.Milliseconds()).Int()
	if err != nil {
		return false, unavailable("lease", err)
	}
	return n == 1, nil
}

// Counters returns the live numbers of an activity; the bool is false when
// Redis holds no live state for it (never made, lost, half way through a
// rebuild, or fenced off after a restart or a failover).
func (s *Store) Counters(ctx context.Context, id int64) (activity.Counters, bool, error) {
	l, err := s.layoutOf(ctx, id)
	if err != nil {
		return activity.Counters{}, false, err
	}
	st, err := s.states(ctx, l)
	if err != nil {
		return activity.Counters{}, false, err
	}
	var c activity.Counters
	for _, x := range st {
		if !x.live {
			return activity.Counters{}, false, nil
		}
		c.Claimed += x.used
		c.Issued += x.issued
		c.InFlight += x.inFlight
	}
	return c, true, nil
}

// Fence makes every shard of a sharded activity not live, as a state that
// came back from a snapshot is: nothing more is claimed or confirmed in its
// epoch until a rebuild makes them all again. A rebuild fences before it
// waits for the events in flight, so that no token is confirmed on a shard
// still live after the wait (its event would come too late for the new
// epoch). One shard alone has nothing to fence: it is lost already.
func (s *Store) Fence(ctx context.Context, a *activity.Activity) error {
	if a.Shards <= 1 {
		return nil
	}
	for _, sh := range s.layoutFor(a).shards {
		if err := s.rdb.HSet(ctx, sh.k.Meta, "replid", "fenced").Err(); err != nil {
			return unavailable("fence", err)
		}
	}
	return nil
}

// SetStock changes the stock of an activity's live state (setstock.lua).
func (s *Store) SetStock(ctx context.Context, id, stock int64) error {
	l, err := s.layoutOf(ctx, id)
	if err != nil {
		return err
	}
	if l.sharded() {
		return s.raiseShards(ctx, l, stock)
	}
	k := s.KeysOf(id)
	res, err := stockScript.Run(ctx, s.rdb, []string{k.Meta, k.Used}, stock).Int64Slice()
	if err != nil {
		return unavailable("stock", err)
	}
	switch {
	case len(res) == 1 && res[0] == 1:
		return nil
	case len(res) == 2 && res[0] == 2:
		return &activity.StockConflictError{Claimed: res[1], Lowest: res[1]}
	case len(res) == 1 && res[0] == 5:
		return activity.ErrNoState
	}
	return unavailable("stock", fmt.Errorf("unexpected answer %v", res))
}

// Now returns the time of the Redis node that holds the activity: the clock
// its claims go by.
func (s *Store) Now(ctx context.Context, id int64) (time.Time, error) {
	l, err := s.layoutOf(ctx, id)
	if err != nil {
		return time.Time{}, err
	}
	t, err := clockScript.Run(ctx, s.rdb, []string{l.shards[0].k.Meta}).Int64Slice()
	if err != nil || len(t) != 2 {
		return time.Time{}, unavailable("time", fmt.Errorf("%v %w", t, err))
	}
	return time.Unix(t[0], t[1]*1000).UTC(), nil
}

// liveKey is the set of the activities preheated or rebuilt in this Redis,
// so that their leases are reaped while MySQL is down too.
func (s *Store) liveKey() string { return s.prefix + ":live" }

func (s *Store) list(ctx context.Context, id int64) error {
	if err := s.rdb.SAdd(ctx, s.liveKey(), id).Err(); err != nil {
		return unavailable("list", err)
	}
	return nil
}

// Listed returns the activities that have a state in Redis, as far as Redis
// knows: the ones to reap when MySQL cannot say which are live.
func (s *Store) Listed(ctx context.Context) ([]int64, error) {
	ms, err := s.rdb.SMembers(ctx, s.liveKey()).Result()
	if err != nil {
		return nil, unavailable("listed", err)
	}
	ids := make([]int64, 0, len(ms))
	for _, m := range ms {
		if id, err := strconv.ParseInt(m, 10, 64); err == nil {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// Unlist drops activities that are no longer live from Listed.
func (s *Store) Unlist(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	ms := make([]any, len(ids))
	for i, id := range ids {
		ms[i] = id
	}
	if err := s.rdb.SRem(ctx, s.liveKey(), ms...).Err(); err != nil {
		return unavailable("unlist", err)
	}
	return nil
}

// Drop deletes every key of an activity.
func (s *Store) Drop(ctx context.Context, id int64) error {
	l, err := s.layoutOf(ctx, id)
	if err != nil {
		return err
	}
	// The shards go first: a flush of counted joins finds no state then,
	// and leaves the sale keys alone once they are gone.
	for _, sh := range l.shards {
		if _, err := s.clear(ctx, sh.k, nil); err != nil {
			return err
		}
	}
	if err := s.dropSaleAt(ctx, l.shards[0].k); err != nil {
		return err
	}
	if err := s.rdb.Del(ctx, s.KeysOf(id).Job).Err(); err != nil {
		return unavailable("drop", err)
	}
	// This instance's refill mutexes of the activity (another instance's go
	// with its process: a few bytes per shard of each sharded activity).
	for j := range l.shards {
		s.refills.Delete(refillKey{id, j})
	}
	return s.dropRoute(ctx, id)
}

// Stop stops the store's background workers; the Redis client is the
// caller's to close.
func (s *Store) Stop() { s.batch.close() }
