package activity_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"seckill/activity"
	"seckill/activity/mysql"
	"seckill/internal/testenv"
	"seckill/stock"
)

// An open whose preheat lands but whose reply is lost moves the activity
// back to approved and closes what its preheat may have left in Redis:
// joins (which go to Redis only) get no token of an activity MySQL says is
// approved. The stock may then be lowered (nothing is claimed), and the
// open again sells exactly it.
func TestShardedOneShardJoinsAfterFailedOpenThenLowered(t *testing.T) {
	ctx := context.Background()
	q := &queueRecorder{}
	env := testenv.New(t, testenv.Options{
		Slots:    func(s *stock.Store) activity.SlotStore { return &lostReplySlots{Store: s} },
		Recorder: func(*mysql.Repository) activity.Recorder { return q },
	})
	begin, end := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	name, stockN, limit, shards := "x", int64(6), int64(1), 1
	a, err := env.Svc.Create(ctx, activity.Fields{Name: &name, Stock: &stockN, PerUserLimit: &limit, BeginAt: &begin, EndAt: &end, Shards: &shards})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionApprove); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionOpen); err == nil {
		t.Fatal("the open with its reply lost succeeded")
	}
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
