package activity_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"seckill/activity"
)

// An open whose preheat lands but whose reply is lost rolls back to
// approved while Redis holds a live state that sells (as in
// TestFailedOpenIsNotForgotten). The activity then goes back to draft and
// its shards are edited: the edit is refused, as Redis may keep the state
// laid out for the old number (a second layout beside it would sell the
// numbers sold before again, or clear the tokens they issued); approved
// and opened again it sells exactly its stock, also when the events of the
// first tokens are stored only after the second open (EventsLate).
func TestShardedFailedOpenThenShardsEdited(t *testing.T) {
	for _, c := range []struct {
		from, to int
		late     bool
	}{{1, 1, false}, {2, 2, false}, {1, 2, false}, {2, 1, false}, {2, 3, false}, {1, 1, true}, {2, 2, true}, {1, 2, true}, {2, 1, true}, {2, 3, true}} {
		name := fmt.Sprintf("%dto%d", c.from, c.to)
		if c.late {
			name += "EventsLate"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			env, q := failedOpenEnv(t)
			name, stockN, limit, shards := "x", int64(4), int64(1), c.from
			a := failedOpen(t, env, activity.Fields{Name: &name, Stock: &stockN, PerUserLimit: &limit, Shards: &shards})
			var tokens []*activity.Participation
			join := func(user string) {
				if p, err := env.Svc.Join(ctx, a.ID, user, ""); err == nil {
					tokens = append(tokens, p)
				}
			}
			for i := range 3 {
				join(fmt.Sprintf("early%d", i))
			}
			if !c.late {
				if err := env.Svc.StoreEvents(ctx, q.drain()); err != nil {
					t.Fatal(err)
				}
			}
			early := len(tokens)
			if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionDraft); err != nil {
				t.Fatal(err)
			}
			shards = c.to
			_, err := env.Svc.Update(ctx, a.ID, activity.Fields{Shards: &shards})
			var invalid *activity.ValidationError
			switch {
			case c.from == c.to && err != nil:
				t.Fatalf("edit of the draft's shards to as many: %v", err)
			case c.from != c.to && (!errors.As(err, &invalid) || invalid.Field != "shards"):
				t.Fatalf("edit of the shards of a draft opened once: %v, want refused naming shards", err)
			}
			if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionApprove); err != nil {
				t.Fatal(err)
			}
			if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionOpen); err != nil {
				t.Fatalf("the open retried: %v", err)
			}
			for i := range 10 {
				join(fmt.Sprintf("late%d", i))
			}
			if err := env.Svc.StoreEvents(ctx, q.drain()); err != nil {
				t.Fatal(err)
			}
			env.Reconcile(t)
			n, _ := env.Repo.CountRecorded(ctx, a.ID)
			if n > stockN || len(tokens) > int(stockN) {
				t.Errorf("%d tokens answered (%d before the edit) and %d valid records for stock %d", len(tokens), early, n, stockN)
			}
			slots := map[int64]int{}
			for _, p := range tokens {
				slots[p.Slot]++
				if _, err := env.Svc.Token(ctx, p.Token); err != nil {
					t.Errorf("token of slot %d answered 200: %v", p.Slot, err)
				}
			}
			for slot, k := range slots {
				if k > 1 {
					t.Errorf("slot %d handed out %d times", slot, k)
				}
			}
		})
	}
}
