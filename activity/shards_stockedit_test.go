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

// An open whose preheat lands but whose reply is lost rolls back (as in
// TestShardedFailedOpenThenShardsEdited); back in draft, the stock is
// edited instead of the shards, which Update lets through. Opened again,
// the activity must sell exactly its new stock: lowered, no more; raised,
// every slot. One shard's state takes the new stock at the preheat again;
// a sharded one keeps the old split.
func TestShardedFailedOpenThenStockEdited(t *testing.T) {
	for _, c := range []struct {
		shards   int
		from, to int64
		approved bool // ChangeStock while approved, without a return to draft
	}{{1, 6, 3, false}, {2, 6, 3, false}, {1, 6, 10, false}, {2, 6, 10, false}, {2, 6, 3, true}, {2, 6, 10, true}} {
		name := fmt.Sprintf("shards%d_%dto%d", c.shards, c.from, c.to)
		if c.approved {
			name += "Approved"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			q := &queueRecorder{}
			env := testenv.New(t, testenv.Options{
				Slots:    func(s *stock.Store) activity.SlotStore { return &lostReplySlots{Store: s} },
				Recorder: func(*mysql.Repository) activity.Recorder { return q },
			})
			begin, end := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
			name, stockN, limit, shards := "x", c.from, int64(1), c.shards
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
			if c.approved {
				if _, err := env.Svc.ChangeStock(ctx, a.ID, c.to); err != nil {
					t.Logf("stock change refused: %v", err)
					return
				}
			} else {
				if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionDraft); err != nil {
					t.Fatal(err)
				}
				stockN = c.to
				if _, err := env.Svc.Update(ctx, a.ID, activity.Fields{Stock: &stockN}); err != nil {
					t.Logf("stock edit refused: %v", err)
					return
				}
				if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionApprove); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionOpen); err != nil {
				t.Fatalf("the open retried: %v", err)
			}
			tokens := 0
			for i := range 30 {
				if _, err := env.Svc.Join(ctx, a.ID, fmt.Sprintf("u%d", i), ""); err == nil {
					tokens++
				}
			}
			if err := env.Svc.StoreEvents(ctx, q.drain()); err != nil {
				t.Fatal(err)
			}
			if tokens != int(c.to) {
				t.Errorf("%d tokens of 30 joins for the stock edited from %d to %d", tokens, c.from, c.to)
			}
		})
	}
}
