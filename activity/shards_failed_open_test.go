package activity_test

import (
	"context"
	"fmt"
	"testing"

	"seckill/activity"
)

// An open whose preheat lands but whose reply is lost moves the activity
// back to approved and closes what its preheat may have left in Redis:
// joins (which go to Redis only) get no token of an activity MySQL says is
// approved. The stock may then be lowered (nothing is claimed), and the
// open again sells exactly it.
func TestShardedOneShardJoinsAfterFailedOpenThenLowered(t *testing.T) {
	ctx := context.Background()
	env, q := failedOpenEnv(t)
	name, stockN, limit, shards := "x", int64(6), int64(1), 1
	a := failedOpen(t, env, activity.Fields{Name: &name, Stock: &stockN, PerUserLimit: &limit, Shards: &shards})
	tokens := 0
	for i := range 4 {
		if _, err := env.Svc.Join(ctx, a.ID, fmt.Sprintf("early%d", i), ""); err == nil {
			tokens++
		}
	}
	if got, _ := env.Svc.Get(ctx, a.ID); tokens != 0 {
		t.Errorf("%d tokens answered while MySQL says %s", tokens, got.State)
	}
	if _, err := env.Svc.ChangeStock(ctx, a.ID, 2); err != nil {
		t.Fatalf("lower with nothing claimed: %v", err)
	}
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionOpen); err != nil {
		t.Fatalf("the open retried: %v", err)
	}
	for i := range 10 {
		if _, err := env.Svc.Join(ctx, a.ID, fmt.Sprintf("late%d", i), ""); err == nil {
			tokens++
		}
	}
	if err := env.Svc.StoreEvents(ctx, q.drain()); err != nil {
		t.Fatal(err)
	}
	final, _ := env.Svc.Get(ctx, a.ID)
	if int64(tokens) != final.Stock {
		t.Errorf("%d tokens answered 200 for a stock of %d", tokens, final.Stock)
	}
}
