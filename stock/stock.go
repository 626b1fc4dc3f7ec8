// Package stock is the Redis slot engine: it preheats an activity's stock and
// claims, confirms and releases numbered slots with Lua scripts, one round
// trip each. Every key of an activity carries the activity's hash tag, so the
// scripts run unchanged on a single node and on Redis Cluster.
package stock

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"seckill/activity"
)

var (
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

	claimScript   = redis.NewScript(claimSource)
	confirmScript = redis.NewScript(confirmSource)
	releaseScript = redis.NewScript(giveBackSource + releaseSource)
	reapScript    = redis.NewScript(giveBackSource + reapSource)
	settleScript  = redis.NewScript(settleSource)
	preheatScript = redis.NewScript(preheatSource)
	closeScript   = redis.NewScript(closeSource)
)

// Codes returned by claim.lua.
const (
	claimOK       = 1
	claimSoldOut  = 2
	claimLimit    = 3
	claimNotOpen  = 4
	claimNoState  = 5
	claimNoNumber = 6
)

// DefaultPrefix is the key prefix of the service.
const DefaultPrefix = "seckill"

// DefaultLease is how long a claim may stay in flight before the slot store
// may give it back.
const DefaultLease = 15 * time.Second

// Store is the slot engine. It implements activity.SlotStore.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	lease  time.Duration
}

// Options tune a Store.
type Options struct {
	// Prefix starts every key; DefaultPrefix when empty. Tests use their own.
	Prefix string
	// Lease is how long a claim may stay in flight; DefaultLease when zero.
	Lease time.Duration
}

// New returns a Store on a single-node or cluster client.
func New(rdb redis.UniversalClient, o Options) *Store {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	return &Store{rdb: rdb, prefix: o.Prefix, lease: o.Lease}
}

// Keys are the Redis keys of one activity; they share its hash tag.
type Keys struct {
	Meta, Used, Users, Issued, Slots, Free, Leases, Confirmed string
	// LockPrefix followed by the slot number is the slot's lock key,
	// "seckill:{42}:lock:42_17".
	LockPrefix string
}

// KeysOf returns the keys of activity id.
func (s *Store) KeysOf(id int64) Keys {
	ids := strconv.FormatInt(id, 10)
	tag := s.prefix + ":{" + ids + "}:"
	return Keys{
		Meta:       tag + "meta",
		Used:       tag + "used",
		Users:      tag + "users",
		Issued:     tag + "issued",
		Slots:      tag + "slots",
		Free:       tag + "free",
		Leases:     tag + "leases",
		Confirmed:  tag + "confirmed",
		LockPrefix: tag + "lock:" + ids + "_",
	}
}

// Lock returns the lock key of a slot.
func (k Keys) Lock(slot int64) string { return k.LockPrefix + strconv.FormatInt(slot, 10) }

func unavailable(op string, err error) error {
	return fmt.Errorf("%w: redis %s: %w", activity.ErrUnavailable, op, err)
}

// Preheat loads an activity's stock and opens it for claims.
func (s *Store) Preheat(ctx context.Context, a *activity.Activity) error {
	k := s.KeysOf(a.ID)
	err := preheatScript.Run(ctx, s.rdb, []string{k.Meta, k.Used, k.Issued},
		a.Stock, a.PerUserLimit, a.BeginAt.UnixMilli(), a.EndAt.UnixMilli()).Err()
	if err != nil {
		return unavailable("preheat", err)
	}
	return nil
}

// Close stops claims on an activity at once.
func (s *Store) Close(ctx context.Context, id int64) error {
	if err := closeScript.Run(ctx, s.rdb, []string{s.KeysOf(id).Meta}).Err(); err != nil {
		return unavailable("close", err)
	}
	return nil
}

// Claim takes a free slot for c.UserID and sets c.Slot.
func (s *Store) Claim(ctx context.Context, c *activity.Claim) error {
	k := s.KeysOf(c.ActivityID)
	res, err := claimScript.Run(ctx, s.rdb,
		[]string{k.Meta, k.Used, k.Users, k.Slots, k.Free, k.Leases, k.LockPrefix},
		c.UserID, c.ClaimID, s.lease.Milliseconds()).Int64Slice()
	if err != nil {
		return unavailable("claim", err)
	}
	if len(res) != 2 {
		return unavailable("claim", fmt.Errorf("unexpected reply %v", res))
	}
	switch res[0] {
	case claimOK:
		c.Slot = res[1]
		return nil
	case claimSoldOut:
		return activity.ErrSoldOut
	case claimLimit:
		return activity.ErrLimitReached
	case claimNotOpen:
		return activity.ErrNotOpen
	case claimNoState:
		return activity.ErrNoState
	case claimNoNumber:
		return fmt.Errorf("%w: no free slot number although the counter has room (activity %d)", activity.ErrUnavailable, c.ActivityID)
	default:
		return unavailable("claim", fmt.Errorf("unexpected code %d", res[0]))
	}
}

// Confirm turns a claim into an issued slot. It returns ErrLeaseLost when the
// claim is no longer held or its lock expired.
func (s *Store) Confirm(ctx context.Context, c activity.Claim, issuedAt time.Time) error {
	k := s.KeysOf(c.ActivityID)
	n, err := confirmScript.Run(ctx, s.rdb,
		[]string{k.Leases, k.Lock(c.Slot), k.Slots, k.Issued, k.Confirmed},
		c.Slot, c.ClaimID, c.UserID, issuedAt.UnixMilli()).Int64()
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
	k := s.KeysOf(c.ActivityID)
	err := releaseScript.Run(ctx, s.rdb,
		[]string{k.Leases, k.Lock(c.Slot), k.Used, k.Users, k.Free},
		c.Slot, c.ClaimID, c.UserID).Err()
	if err != nil {
		return unavailable("release", err)
	}
	return nil
}

// Reap gives back up to limit claims whose lease ran out.
func (s *Store) Reap(ctx context.Context, id int64, limit int) (int, error) {
	k := s.KeysOf(id)
	n, err := reapScript.Run(ctx, s.rdb, []string{k.Leases, k.LockPrefix, k.Used, k.Users, k.Free}, limit).Int()
	if err != nil {
		return 0, unavailable("reap", err)
	}
	return n, nil
}

// Settle tells what became of the claims of pending participations of one
// activity.
func (s *Store) Settle(ctx context.Context, id int64, ps []activity.Participation) ([]activity.Outcome, error) {
	k := s.KeysOf(id)
	args := make([]any, 0, 3*len(ps))
	for _, p := range ps {
		args = append(args, p.Slot, p.ClaimID, p.UserID)
	}
	codes, err := settleScript.Run(ctx, s.rdb, []string{k.Leases, k.Confirmed, k.Used}, args...).Int64Slice()
	if err != nil {
		return nil, unavailable("settle", err)
	}
	if len(codes) != len(ps) {
		return nil, unavailable("settle", fmt.Errorf("%d answers for %d claims", len(codes), len(ps)))
	}
	out := make([]activity.Outcome, len(codes))
	for i, c := range codes {
		switch c {
		case 1:
			out[i] = activity.OutcomeConfirmed
		case 0:
			out[i] = activity.OutcomeInFlight
		case -1:
			out[i] = activity.OutcomeGivenBack
		default:
			out[i] = activity.OutcomeUnknown
		}
	}
	return out, nil
}

// Forget drops confirmed claims whose records are valid in MySQL.
func (s *Store) Forget(ctx context.Context, id int64, claimIDs []string) error {
	if len(claimIDs) == 0 {
		return nil
	}
	if err := s.rdb.HDel(ctx, s.KeysOf(id).Confirmed, claimIDs...).Err(); err != nil {
		return unavailable("forget", err)
	}
	return nil
}

// Confirmed returns a confirmed claim whose record is not settled yet.
func (s *Store) Confirmed(ctx context.Context, id int64, claimID string) (*activity.Participation, bool, error) {
	v, err := s.rdb.HGet(ctx, s.KeysOf(id).Confirmed, claimID).Result()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, unavailable("confirmed", err)
	}
	// "slot:userId:issuedAt"
	parts := strings.SplitN(v, ":", 3)
	if len(parts) != 3 {
		return nil, false, nil
	}
	slot, err1 := strconv.ParseInt(parts[0], 10, 64)
	ms, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return nil, false, nil
	}
	return &activity.Participation{ActivityID: id, ClaimID: claimID, Slot: slot, UserID: parts[1],
		IssuedAt: time.UnixMilli(ms).UTC(), Status: activity.RecordValid}, true, nil
}

// Counters returns the live numbers of an activity; the bool is false when
// Redis holds no state for it.
func (s *Store) Counters(ctx context.Context, id int64) (activity.Counters, bool, error) {
	k := s.KeysOf(id)
	var used, issued *redis.StringCmd
	var inFlight *redis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		used = p.Get(ctx, k.Used)
		issued = p.Get(ctx, k.Issued)
		inFlight = p.ZCard(ctx, k.Leases)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return activity.Counters{}, false, unavailable("counters", err)
	}
	if errors.Is(used.Err(), redis.Nil) {
		return activity.Counters{}, false, nil
	}
	var c activity.Counters
	c.Claimed, _ = used.Int64()
	c.Issued, _ = issued.Int64()
	c.InFlight = inFlight.Val()
	return c, true, nil
}

// Client returns the Redis client of the store.
func (s *Store) Client() redis.UniversalClient { return s.rdb }
