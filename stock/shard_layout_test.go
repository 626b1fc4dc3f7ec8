package stock_test

// The layout of a sharded activity as a store finds it: a store that has
// not learned an activity, a route key lost or left by another activity of
// the same ID, a draft whose shards change.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"seckill/activity"
	"seckill/internal/testenv"
	"seckill/stock"
)

// routeKeyOf is the route key of an activity: "{id}:route".
func routeKeyOf(s *stock.Store, id int64) string {
	m := s.KeysOf(id).Meta
	return m[:len(m)-len("meta")] + "route"
}

// An activity ID used again (the database made again while Redis kept its
// keys, the case Preheat's clearOther is for): the old activity was
// sharded, the new one is not. The new one's preheat leaves the old route
// key, so every store that reads it sends the new activity's joins to the
// old activity's shards: they sell the old stock, past the new one's.
func TestShardedReusedIDUnshardedKeepsOldRoute(t *testing.T) {
	ctx := context.Background()
	const id = 9301
	old, _ := newShardedStore(t, id, 20, 5, 2)
	rdb := old.Client()
	prefix := strings.TrimSuffix(old.KeysOf(id).Meta, ":{9301}:meta")
	_ = prefix
	// The new activity of the same ID, one shard, stock 3, preheated by
	// another instance that learned it from MySQL.
	opener := stock.New(rdb, stock.Options{Prefix: prefixOf(old), Lease: time.Minute})
	t.Cleanup(opener.Stop)
	a := &activity.Activity{ID: id, Stock: 3, PerUserLimit: 5, State: activity.StateOpen, Shards: 1,
		BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour), CreatedAt: time.Now().Add(time.Second)}
	opener.Learn(a)
	if err := opener.Preheat(ctx, a); err != nil {
		t.Fatal(err)
	}
	if v, err := rdb.Get(ctx, routeKeyOf(old, id)).Result(); err == nil {
		t.Errorf("the route key of the old sharded activity is still %q after the unsharded preheat", v)
	}
	// A join instance that starts now: it has learned nothing.
	join := stock.New(rdb, stock.Options{Prefix: prefixOf(old), Lease: time.Minute})
	t.Cleanup(join.Stop)
	won := 0
	for i := range 10 {
		c := activity.Claim{ActivityID: id, UserID: "u" + string(rune('a'+i)), ClaimID: "c" + string(rune('a'+i))}
		if err := join.Claim(ctx, &c); err != nil {
			continue
		}
		if err := join.Confirm(ctx, c, time.Now()); err == nil {
			won++
		}
	}
	if won > int(a.Stock) {
		t.Errorf("%d tokens of the new activity of stock %d (sold from the old activity's shards)", won, a.Stock)
	}
}

func prefixOf(s *stock.Store) string {
	m := s.KeysOf(1).Meta
	return strings.TrimSuffix(m, ":{1}:meta")
}

// The retention drops an activity MySQL no longer knows (over answers
// true without Learn): a store that has not learned it, whose route key is
// lost (the master of "{id}" flushed, or a failover to a replica that
// lagged), deletes "{id}" keys only and then unlists it: the shards' keys
// stay for good.
func TestShardedDropUnlearnedWithoutRouteLeavesShards(t *testing.T) {
	ctx := context.Background()
	const id = 9302
	s, _ := newShardedStore(t, id, 20, 5, 2)
	rdb := s.Client()
	c := activity.Claim{ActivityID: id, UserID: "u1", ClaimID: "c1"}
	if err := s.Claim(ctx, &c); err != nil {
		t.Fatal(err)
	}
	if err := s.Confirm(ctx, c, time.Now()); err != nil {
		t.Fatal(err)
	}
	rdb.Del(ctx, routeKeyOf(s, id))
	other := stock.New(rdb, stock.Options{Prefix: prefixOf(s), Lease: time.Minute})
	t.Cleanup(other.Stop)
	if err := other.Drop(ctx, id); err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, k := range s.ShardKeys(id, 2) {
		for _, key := range []string{k.Meta, k.Used, k.Slots, k.Confirmed, k.Held} {
			if n, _ := rdb.Exists(ctx, key).Result(); n > 0 {
				left = append(left, key)
			}
		}
	}
	if len(left) > 0 {
		t.Errorf("after Drop by a store that did not learn the activity, the shards' keys are left: %v", left)
	}
}

// A token lookup on an instance that has not learned the activity and the
// route key is lost: Confirmed asks "{id}" only, answers ErrNoState, and
// Service.lostToken answers 503 without Learn: the instance cannot look up
// a valid token until a rebuild writes the route key again (none comes:
// the shards are live).
func TestShardedConfirmedUnlearnedWithoutRoute(t *testing.T) {
	ctx := context.Background()
	const id = 9303
	s, _ := newShardedStore(t, id, 20, 5, 2)
	rdb := s.Client()
	c := activity.Claim{ActivityID: id, UserID: "u1", ClaimID: "c1"}
	if err := s.Claim(ctx, &c); err != nil {
		t.Fatal(err)
	}
	if err := s.Confirm(ctx, c, time.Now()); err != nil {
		t.Fatal(err)
	}
	rdb.Del(ctx, routeKeyOf(s, id))
	other := stock.New(rdb, stock.Options{Prefix: prefixOf(s), Lease: time.Minute})
	t.Cleanup(other.Stop)
	_, ok, err := other.Confirmed(ctx, id, "c1")
	if err != nil || !ok {
		t.Errorf("Confirmed of a confirmed claim on a store that did not learn the activity: ok %v err %v", ok, err)
	}
	outs, err := other.Settle(ctx, id, []activity.Participation{{ActivityID: id, UserID: "u1", ClaimID: "c1", Slot: c.Slot, Epoch: c.Epoch, Seq: c.Seq}})
	if err != nil || outs[0] != activity.OutcomeConfirmed {
		t.Errorf("Settle on a store that did not learn the activity: %v %v", outs, err)
	}
}

var _ = testenv.Redis

// The reverse: the old activity of a reused ID had one shard, the new one
// is sharded. preheatShards clears the old state under each shard's tag
// only, never under "{id}", and Drop of a sharded layout deletes only the
// shards (and "{id}:job", "{id}:route"): the old activity's "{id}" state
// stays for good, live, where a store without a route key looks.
func TestShardedReusedIDShardedLeavesOldState(t *testing.T) {
	ctx := context.Background()
	const id = 9304
	rdb, prefix := testenv.Redis(t)
	s := stock.New(rdb, stock.Options{Prefix: prefix, Lease: time.Minute})
	t.Cleanup(s.Stop)
	oldA := &activity.Activity{ID: id, Stock: 5, PerUserLimit: 5, State: activity.StateOpen, Shards: 1,
		BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour), CreatedAt: time.Now()}
	if err := s.Preheat(ctx, oldA); err != nil {
		t.Fatal(err)
	}
	newA := *oldA
	newA.Shards, newA.Stock, newA.CreatedAt = 2, 10, time.Now().Add(time.Second)
	opener := stock.New(rdb, stock.Options{Prefix: prefix, Lease: time.Minute})
	t.Cleanup(opener.Stop)
	if err := opener.Preheat(ctx, &newA); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(ctx, s.KeysOf(id).Meta).Result(); n > 0 {
		t.Errorf("the old one-shard state %s is left after the sharded preheat", s.KeysOf(id).Meta)
	}
	if err := opener.Drop(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(ctx, s.KeysOf(id).Meta).Result(); n > 0 {
		t.Errorf("the old one-shard state %s is left after Drop", s.KeysOf(id).Meta)
	}
}

// A store that learned an activity with the shards of a draft (Learn: a
// ChangeStock of the draft, a return to draft), whose shards were edited
// before it opened elsewhere, keeps the old layout for routedFor (a
// minute) as routed, without reading the route key the open wrote; where
// the two layouts share a tag (here shard 0), it settles a confirmed claim
// of another shard void, and lets a user claim on two shards past the
// per-user limit.
func TestShardedLearnedDraftShardsThenEdited(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	probe := stock.New(rdb, stock.Options{Prefix: prefix})
	t.Cleanup(probe.Stop)
	id := int64(9400)
	draft := &activity.Activity{ID: id, Stock: 20, PerUserLimit: 1, State: activity.StateDraft, Shards: 3,
		BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour), CreatedAt: time.Now()}
	j := stock.New(rdb, stock.Options{Prefix: prefix, Lease: time.Minute})
	t.Cleanup(j.Stop)
	j.Learn(draft) // e.g. ChangeStock of the draft on instance J
	opened := *draft
	opened.Shards, opened.State = 2, activity.StateOpen // edited, approved, opened on instance O
	o := stock.New(rdb, stock.Options{Prefix: prefix, Lease: time.Minute})
	t.Cleanup(o.Stop)
	o.Learn(&opened)
	if err := o.Preheat(ctx, &opened); err != nil {
		t.Fatal(err)
	}
	// A user whose home is shard 1 of 2, and shard 0 of 3.
	user := ""
	for i := 0; ; i++ {
		user = "user-" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676%26))
		if stock.HomeShard(user, 2) == 1 && stock.HomeShard(user, 3) == 0 {
			break
		}
	}
	c := activity.Claim{ActivityID: id, UserID: user, ClaimID: "c-o"}
	if err := o.Claim(ctx, &c); err != nil {
		t.Fatal(err)
	}
	if err := o.Confirm(ctx, c, time.Now()); err != nil {
		t.Fatal(err)
	}
	outs, err := j.Settle(ctx, id, []activity.Participation{{ActivityID: id, UserID: user, ClaimID: c.ClaimID, Slot: c.Slot, Epoch: c.Epoch, Seq: c.Seq}})
	if err != nil || outs[0] == activity.OutcomeGivenBack {
		t.Errorf("J settles a confirmed claim: %v %v (given back: its record would be void)", outs, err)
	}
	c2 := activity.Claim{ActivityID: id, UserID: user, ClaimID: "c-j"}
	if err := j.Claim(ctx, &c2); err == nil {
		if err := j.Confirm(ctx, c2, time.Now()); err == nil {
			t.Errorf("user %s holds two tokens (slots %d and %d) at a per-user limit of 1", user, c.Slot, c2.Slot)
		}
	}
}

// routeReads counts the reads of route keys: GETs of a ":route" key, alone
// or in a pipeline.
type routeReads struct{ n atomic.Int64 }

func (r *routeReads) count(cmds ...redis.Cmder) {
	for _, c := range cmds {
		if args := c.Args(); len(args) == 2 && c.Name() == "get" && strings.HasSuffix(fmt.Sprint(args[1]), ":route") {
			r.n.Add(1)
		}
	}
}

func (r *routeReads) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *routeReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { r.count(cmd); return next(ctx, cmd) }
}

func (r *routeReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { r.count(cmds...); return next(ctx, cmds) }
}

// A flood of claims on an activity of one shard that is not open yet reads
// the route key a few times a second, not once a claim; once preheated
// sharded, a claim finds it at once.
func TestShardedRouteReadsOfAFlood(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	s := stock.New(rdb, stock.Options{Prefix: prefix, Lease: time.Minute})
	t.Cleanup(s.Stop)
	var reads routeReads
	rdb.AddHook(&reads)
	start := time.Now()
	const claims = 400
	for i := range claims {
		c := activity.Claim{ActivityID: 9700, UserID: fmt.Sprintf("f%d", i), ClaimID: fmt.Sprintf("f%d", i)}
		if err := s.Claim(ctx, &c); !errors.Is(err, activity.ErrNoState) {
			t.Fatalf("claim before the open: %v", err)
		}
	}
	took := time.Since(start)
	if most := int64(took/(250*time.Millisecond)) + 3; reads.n.Load() > most {
		t.Errorf("%d claims in %v read the route key %d times, want at most %d", claims, took.Round(time.Millisecond), reads.n.Load(), most)
	}
	a := &activity.Activity{ID: 9700, Stock: 6, PerUserLimit: 1, State: activity.StateOpen, Shards: 3,
		BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour), CreatedAt: time.Now()}
	other := stock.New(rdb, stock.Options{Prefix: prefix})
	t.Cleanup(other.Stop)
	if err := other.Preheat(ctx, a); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	c := activity.Claim{ActivityID: 9700, UserID: "after", ClaimID: "after"}
	if err := s.Claim(ctx, &c); err != nil {
		t.Fatalf("claim after the open elsewhere: %v", err)
	}
}
