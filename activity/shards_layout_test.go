package activity_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"seckill/activity"
	"seckill/internal/testenv"
	"seckill/stock"
)

// TestShardedTokenOnInstanceThatDidNotLearnShards: the route key of a
// sharded activity is lost (it lives on "{id}", another master than the
// shards, which stay live, so no rebuild writes it again). A second
// instance that never learned the activity (it runs no job for it, gets
// no join of it) looks a token up whose record waits pending in MySQL:
// Settle asks "{id}" only, answers unknown, and the lookup answers 503
// every time, although the claim is confirmed on its shard. Nothing on the
// path (recorded, lostToken) tells the store the shards.
func TestShardedTokenOnInstanceThatDidNotLearnShards(t *testing.T) {
	for _, both := range []bool{false, true} {
		t.Run(map[bool]string{false: "RouteKeyLost", true: "BothCopiesLost"}[both], func(t *testing.T) { tokenOnAnotherInstance(t, both) })
	}
}

// tokenOnAnotherInstance is TestShardedTokenOnInstanceThatDidNotLearnShards
// with the route key lost, and with both copies of the layout when both:
// then the first lookup answers 503 and tells the store, from MySQL.
func tokenOnAnotherInstance(t *testing.T, both bool) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	begin, end := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	name, stockN, limit, shards := "route lost", int64(10), int64(1), 2
	a, err := env.Svc.Create(ctx, activity.Fields{Name: &name, Stock: &stockN, PerUserLimit: &limit, BeginAt: &begin, EndAt: &end, Shards: &shards})
	if err != nil {
		t.Fatal(err)
	}
	for _, act := range []activity.Action{activity.ActionApprove, activity.ActionOpen} {
		if _, err := env.Svc.Transition(ctx, a.ID, act); err != nil {
			t.Fatal(err)
		}
	}
	p, err := env.Svc.Join(ctx, a.ID, "user-1", "")
	if err != nil {
		t.Fatal(err)
	}
	// The record waits pending (as StoreEvents writes it when Redis cannot
	// answer).
	if _, err := env.DB.Exec("UPDATE participations SET status = 'pending' WHERE token = ?", p.Token); err != nil {
		t.Fatal(err)
	}
	m := env.Store.KeysOf(a.ID).Meta
	env.Redis.Del(ctx, m[:len(m)-len("meta")]+"route")
	if both {
		env.Redis.HDel(ctx, env.Prefix+":shards", strconv.FormatInt(a.ID, 10))
	}

	// The instance that opened it knows the shards: it answers.
	if got, err := env.Svc.Token(ctx, p.Token); err != nil || got.Slot != p.Slot {
		t.Fatalf("control: the opening instance looks the token up: %+v %v", got, err)
	}
	other := stock.New(env.Redis, stock.Options{Prefix: env.Prefix})
	t.Cleanup(other.Stop)
	svc2 := activity.NewService(env.Repo, other, env.Repo, env.Signer, testenv.Logger(t))
	for i := range 3 {
		got, err := svc2.Token(ctx, p.Token)
		if both && i == 0 && errors.Is(err, activity.ErrUnavailable) {
			continue // told the store the shards
		}
		if err != nil || got.Slot != p.Slot {
			t.Errorf("lookup %d of a confirmed token on the second instance: %+v %v", i, got, err)
		}
		time.Sleep(1100 * time.Millisecond)
	}
	// Nor does this instance's settling settle it.
	if n, err := svc2.SettlePending(ctx, 100); err != nil || n.Valid != 1 {
		t.Errorf("SettlePending on the second instance: %+v %v, want the confirmed record valid", n, err)
	}
}

// TestShardedDraftShardsLearnedThenEdited: instance J changes the stock of
// a draft of k1 shards (ChangeStock Learns it), staff edit the draft to k2
// shards, approve it and open it on instance O, within a minute. J keeps
// the k1 layout as routed for a minute: a user joins once on O and once on
// J past a per-user limit of 1, and J's settling voids O's token that was
// answered 200.
func TestShardedDraftShardsLearnedThenEdited(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{}) // instance O
	begin, end := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	name, stockN, limit := "edited shards", int64(20), int64(1)
	a, err := env.Svc.Create(ctx, activity.Fields{Name: &name, Stock: &stockN, PerUserLimit: &limit, BeginAt: &begin, EndAt: &end})
	if err != nil {
		t.Fatal(err)
	}
	// Two numbers of shards whose layouts share a tag; a user whose home
	// under k1 is that tag, under k2 another.
	k1, k2, x, y := 0, 0, 0, 0
search:
	for k1 = 2; k1 <= 8; k1++ {
		for k2 = 2; k2 <= 8; k2++ {
			if k1 == k2 {
				continue
			}
			for x = range k1 {
				for y = range k2 {
					if x != y && env.Store.ShardKeys(a.ID, k1)[x].Meta == env.Store.ShardKeys(a.ID, k2)[y].Meta {
						break search
					}
				}
			}
		}
	}
	if k1 > 8 {
		t.Skip("no two layouts share a tag")
	}
	user := ""
	for i := 0; ; i++ {
		user = "user-" + time.Duration(i).String()
		if stock.HomeShard(user, k1) == x && stock.HomeShard(user, k2) != y {
			break
		}
	}
	other := stock.New(env.Redis, stock.Options{Prefix: env.Prefix})
	t.Cleanup(other.Stop)
	j := activity.NewService(env.Repo, other, env.Repo, env.Signer, testenv.Logger(t))

	if _, err := env.Svc.Update(ctx, a.ID, activity.Fields{Shards: &k1}); err != nil {
		t.Fatal(err)
	}
	if _, err := j.ChangeStock(ctx, a.ID, stockN); err != nil { // J learns k1
		t.Fatal(err)
	}
	if _, err := env.Svc.Update(ctx, a.ID, activity.Fields{Shards: &k2}); err != nil {
		t.Fatal(err)
	}
	for _, act := range []activity.Action{activity.ActionApprove, activity.ActionOpen} {
		if _, err := env.Svc.Transition(ctx, a.ID, act); err != nil {
			t.Fatal(err)
		}
	}
	p, err := env.Svc.Join(ctx, a.ID, user, "")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := j.Join(ctx, a.ID, user, "")
	t.Logf("k1 %d x %d k2 %d y %d; J join: %+v %v", k1, x, k2, y, p2, err)
	if err == nil {
		t.Errorf("user %s joined twice at a limit of 1: slots %d and %d (shards %d learned, %d opened)", user, p.Slot, p2.Slot, k1, k2)
	}
	// O's record waits pending; J settles it.
	if _, err := env.DB.Exec("UPDATE participations SET status = 'pending' WHERE token = ?", p.Token); err != nil {
		t.Fatal(err)
	}
	if _, err := j.SettlePending(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Svc.Token(ctx, p.Token); err != nil {
		t.Errorf("the token answered 200 is lost after J settled it: %v", err)
	}
}
