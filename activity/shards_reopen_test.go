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

// An open whose preheat lands but whose reply is lost rolls back to
// approved while Redis holds a live state that sells (as in
// TestFailedOpenIsNotForgotten). The activity then goes back to draft, its
// shards are edited, and it is approved and opened again: the second
// preheat keeps the old layout's state where a tag is shared and writes
// fresh shards elsewhere (or, to one shard, clears the old shards with the
// tokens they issued), so the numbers sold before are sold again: more
// valid tokens than stock; and when the events of the first tokens are
// stored only after the second open (EventsLate), their records settle
// void: tokens answered 200 are lost.
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
			q := &queueRecorder{}
			env := testenv.New(t, testenv.Options{
				Slots:    func(s *stock.Store) activity.SlotStore { return &lostReplySlots{Store: s} },
				Recorder: func(*mysql.Repository) activity.Recorder { return q },
			})
			begin, end := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
			name, stockN, limit, shards := "x", int64(4), int64(1), c.from
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
			if _, err := env.Svc.Update(ctx, a.ID, activity.Fields{Shards: &shards}); err != nil {
				t.Fatalf("edit of the draft's shards: %v", err)
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
