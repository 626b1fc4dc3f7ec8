package activity_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"seckill/activity"
)

// An open whose preheat lands but whose reply is lost rolls back (as in
// TestShardedFailedOpenThenShardsEdited); then the stock is changed, in
// draft or while approved. One shard's state takes the new stock at the
// preheat again; a sharded one keeps its numbers, as an open one does: a
// raise is given at the open, a lower is refused. Opened again, the
// activity sells exactly its stock.
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
			env, q := failedOpenEnv(t)
			name, stockN, limit, shards := "x", c.from, int64(1), c.shards
			a := failedOpen(t, env, activity.Fields{Name: &name, Stock: &stockN, PerUserLimit: &limit, Shards: &shards})
			// A lower of a sharded activity opened once is refused, as
			// for an open one; the sale then sells the stock it has.
			want := c.to
			refused := func(err error) {
				var conflict *activity.StockConflictError
				switch {
				case err == nil:
				case c.shards > 1 && c.to < c.from && errors.As(err, &conflict) && conflict.Lowest == c.from:
					want = c.from
				default:
					t.Fatalf("stock change from %d to %d: %v", c.from, c.to, err)
				}
			}
			if c.approved {
				_, err := env.Svc.ChangeStock(ctx, a.ID, c.to)
				refused(err)
			} else {
				if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionDraft); err != nil {
					t.Fatal(err)
				}
				stockN = c.to
				_, err := env.Svc.Update(ctx, a.ID, activity.Fields{Stock: &stockN})
				refused(err)
				if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionApprove); err != nil {
					t.Fatal(err)
				}
			}
			if c.shards > 1 && c.to < c.from && want != c.from {
				t.Fatalf("a lower of a sharded activity opened once from %d to %d was taken", c.from, c.to)
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
			if tokens != int(want) {
				t.Errorf("%d tokens of 30 joins for the stock edited from %d to %d, want %d", tokens, c.from, c.to, want)
			}
		})
	}
}
