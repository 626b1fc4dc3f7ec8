package activity_test

import (
	"context"
	"testing"
	"time"

	"seckill/activity"
	"seckill/internal/testenv"
	"seckill/stock"
)

// TestReview2TokenOnInstanceThatDidNotLearnShards: the route key of a
// sharded activity is lost (it lives on "{id}", another master than the
// shards, which stay live, so no rebuild writes it again). A second
// instance that never learned the activity (it runs no job for it, gets
// no join of it) looks a token up whose record waits pending in MySQL:
// Settle asks "{id}" only, answers unknown, and the lookup answers 503
// every time, although the claim is confirmed on its shard. Nothing on the
// path (recorded, lostToken) tells the store the shards.
func TestReview2TokenOnInstanceThatDidNotLearnShards(t *testing.T) {
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

	// The instance that opened it knows the shards: it answers.
	if got, err := env.Svc.Token(ctx, p.Token); err != nil || got.Slot != p.Slot {
		t.Fatalf("control: the opening instance looks the token up: %+v %v", got, err)
	}
	other := stock.New(env.Redis, stock.Options{Prefix: env.Prefix})
	t.Cleanup(other.Stop)
	svc2 := activity.NewService(env.Repo, other, env.Repo, env.Signer, testenv.Logger(t))
	for i := range 3 {
		got, err := svc2.Token(ctx, p.Token)
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
