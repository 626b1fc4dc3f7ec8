package activity_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"seckill/activity"
	"seckill/activity/mysql"
	"seckill/internal/testenv"
	"seckill/stock"
)

// lostReplyCloseFailsSlots: the first Preheat lands but its reply is lost,
// and the first Close (the failed open's, best-effort) does not reach
// Redis either: the same blip.
type lostReplyCloseFailsSlots struct {
	lostReplySlots
	closeOnce sync.Once
}

func (s *lostReplyCloseFailsSlots) Close(ctx context.Context, id int64) error {
	failed := false
	s.closeOnce.Do(func() { failed = true })
	if failed {
		return activity.Unavailable("redis", errors.New("close: i/o timeout"))
	}
	return s.lostReplySlots.Close(ctx, id)
}

// An open of one shard whose preheat lands (reply lost) and whose close of
// what it left fails too leaves Redis open while MySQL says approved:
// joins get tokens. A lower to the slots claimed so far is taken in MySQL
// while joins go on claiming in Redis; the open again refuses the stock
// below what the kept state claimed, a raise to it opens it, and no more
// tokens are answered 200 than the stock.
func TestFailedOpenWhoseCloseFailsThenLoweredOversells(t *testing.T) {
	ctx := context.Background()
	q := &queueRecorder{}
	env := testenv.New(t, testenv.Options{
		Slots: func(s *stock.Store) activity.SlotStore {
			return &lostReplyCloseFailsSlots{lostReplySlots: lostReplySlots{Store: s}}
		},
		Recorder: func(*mysql.Repository) activity.Recorder { return q },
	})
	begin, end := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	name, stockN, limit := "x", int64(6), int64(1)
	a, err := env.Svc.Create(ctx, activity.Fields{Name: &name, Stock: &stockN, PerUserLimit: &limit, BeginAt: &begin, EndAt: &end})
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
	join := func(prefix string, n int) {
		for i := range n {
			if _, err := env.Svc.Join(ctx, a.ID, fmt.Sprintf("%s%d", prefix, i), ""); err == nil {
				tokens++
			}
		}
	}
	join("early", 2)
	got, _ := env.Svc.Get(ctx, a.ID)
	t.Logf("%d tokens answered while MySQL says %s", tokens, got.State)
	if _, err := env.Svc.ChangeStock(ctx, a.ID, int64(max(tokens, 1))); err != nil {
		t.Logf("lower refused: %v", err)
		return
	}
	join("mid", 4)
	// The open refuses a stock below the slots the kept state claimed; a
	// raise back to them opens it.
	_, err = env.Svc.Transition(ctx, a.ID, activity.ActionOpen)
	var conflict *activity.StockConflictError
	if errors.As(err, &conflict) {
		if _, err := env.Svc.ChangeStock(ctx, a.ID, conflict.Claimed); err != nil {
			t.Fatal(err)
		}
		_, err = env.Svc.Transition(ctx, a.ID, activity.ActionOpen)
	}
	if err != nil {
		t.Fatalf("the open retried: %v", err)
	}
	join("late", 10)
	if err := env.Svc.StoreEvents(ctx, q.drain()); err != nil {
		t.Fatal(err)
	}
	final, _ := env.Svc.Get(ctx, a.ID)
	if int64(tokens) > final.Stock {
		t.Errorf("%d tokens answered 200 for a stock of %d", tokens, final.Stock)
	}
}
