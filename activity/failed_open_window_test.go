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

// windowSlots: the first Preheat lands, joins get tokens from it before
// its reply (lost) comes back, and the open rolls back and closes.
type windowSlots struct {
	*stock.Store
	once   sync.Once
	during func()
}

func (s *windowSlots) Preheat(ctx context.Context, a *activity.Activity) error {
	err := s.Store.Preheat(ctx, a)
	lost := false
	s.once.Do(func() { lost = true })
	if err == nil && lost {
		s.during()
		return activity.Unavailable("redis", errors.New("preheat: i/o timeout"))
	}
	return err
}

// TestFailedOpenIsNotForgotten as it was meant, now that a failed open
// closes what it left: joins got tokens from the landed preheat before it
// was closed; the job, past the retention, must not take the closed state
// of the approved activity for a finished one, and the open retried sells
// on from it, never the stock again.
func TestFailedOpenWithTokensInItsWindowIsNotForgotten(t *testing.T) {
	ctx := context.Background()
	q := &queueRecorder{}
	var env *testenv.Env
	var tokens []*activity.Participation
	var a *activity.Activity
	join := func(user string) {
		if p, err := env.Svc.Join(ctx, a.ID, user, ""); err == nil {
			tokens = append(tokens, p)
		}
	}
	env = testenv.New(t, testenv.Options{
		Slots: func(s *stock.Store) activity.SlotStore {
			return &windowSlots{Store: s, during: func() {
				for i := range 3 {
					join(fmt.Sprintf("early%d", i))
				}
			}}
		},
		Recorder: func(*mysql.Repository) activity.Recorder { return q },
	})
	env.Svc.SetRetention(time.Second)
	begin, end := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	name, stockN, limit := "x", int64(3), int64(1)
	var err error
	a, err = env.Svc.Create(ctx, activity.Fields{Name: &name, Stock: &stockN, PerUserLimit: &limit, BeginAt: &begin, EndAt: &end})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionApprove); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionOpen); err == nil {
		t.Fatal("the open with its reply lost succeeded")
	}
	t.Logf("%d tokens in the window", len(tokens))
	if err := env.Svc.StoreEvents(ctx, q.drain()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // past the retention
	if _, err := env.Job.Cycle(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionOpen); err != nil {
		t.Fatalf("the open retried: %v", err)
	}
	for i := range 3 {
		join(fmt.Sprintf("late%d", i))
	}
	if err := env.Svc.StoreEvents(ctx, q.drain()); err != nil {
		t.Fatal(err)
	}
	env.Reconcile(t)
	if n, _ := env.Repo.CountRecorded(ctx, a.ID); n != stockN || len(tokens) != int(stockN) {
		t.Fatalf("%d tokens answered and %d valid records for stock %d", len(tokens), n, stockN)
	}
	for _, p := range tokens {
		if _, err := env.Svc.Token(ctx, p.Token); err != nil {
			t.Errorf("token answered 200: %v", err)
		}
	}
}

// Joins got tokens from a landed preheat before the failed open closed it:
// a lower of the one-shard stock below them is refused, to them is taken,
// and the open retried sells nothing more.
func TestFailedOpenWithTokensInItsWindowThenLowered(t *testing.T) {
	ctx := context.Background()
	q := &queueRecorder{}
	var env *testenv.Env
	tokens := 0
	var a *activity.Activity
	join := func(user string) {
		if _, err := env.Svc.Join(ctx, a.ID, user, ""); err == nil {
			tokens++
		}
	}
	env = testenv.New(t, testenv.Options{
		Slots: func(s *stock.Store) activity.SlotStore {
			return &windowSlots{Store: s, during: func() {
				for i := range 3 {
					join(fmt.Sprintf("early%d", i))
				}
			}}
		},
		Recorder: func(*mysql.Repository) activity.Recorder { return q },
	})
	begin, end := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	name, stockN, limit := "x", int64(6), int64(1)
	var err error
	a, err = env.Svc.Create(ctx, activity.Fields{Name: &name, Stock: &stockN, PerUserLimit: &limit, BeginAt: &begin, EndAt: &end})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionApprove); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionOpen); err == nil {
		t.Fatal("the open with its reply lost succeeded")
	}
	if tokens != 3 {
		t.Fatalf("%d tokens in the window", tokens)
	}
	// A lower below them is taken in MySQL, and refused by the open.
	if _, err := env.Svc.ChangeStock(ctx, a.ID, 2); err != nil {
		t.Fatal(err)
	}
	var conflict *activity.StockConflictError
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionOpen); !errors.As(err, &conflict) || conflict.Claimed != 3 {
		t.Fatalf("an open with a stock below the 3 tokens answered: %v, want a conflict naming 3", err)
	}
	if _, err := env.Svc.ChangeStock(ctx, a.ID, 3); err != nil {
		t.Fatalf("a lower to the tokens answered: %v", err)
	}
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionOpen); err != nil {
		t.Fatalf("the open retried: %v", err)
	}
	for i := range 5 {
		join(fmt.Sprintf("late%d", i))
	}
	if tokens != 3 {
		t.Errorf("%d tokens for a stock of 3", tokens)
	}
}
