package activity_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"seckill/activity"
	"seckill/activity/mysql"
	"seckill/internal/testenv"
)

// reapprovingRepo plays, inside an open's move to open, what other requests
// may do while the opening instance is paused after its read under the
// state lock: back to draft, the stock lowered, approved again.
type reapprovingRepo struct {
	*mysql.Repository
	stock int64
	done  bool
}

func (r *reapprovingRepo) SetState(ctx context.Context, id int64, from, to activity.State) error {
	if from == activity.StateApproved && to == activity.StateOpen && !r.done {
		r.done = true
		if err := r.Repository.SetState(ctx, id, activity.StateApproved, activity.StateDraft); err != nil {
			return err
		}
		a, err := r.Repository.Activity(ctx, id)
		if err != nil {
			return err
		}
		a.Stock, a.Surplus = r.stock, r.stock
		if err := r.Repository.UpdateActivity(ctx, a, activity.StateDraft); err != nil {
			return err
		}
		if err := r.Repository.SetState(ctx, id, activity.StateDraft, activity.StateApproved); err != nil {
			return err
		}
	}
	return r.Repository.SetState(ctx, id, from, to)
}

// TestOpenPreheatsTheActivityAsOpened: an activity returned to draft,
// edited to a lower stock and approved again between an open's read and
// its move to open is preheated with the stock it has when it opens, not
// the stock the open read first: no more tokens than MySQL's stock.
func TestOpenPreheatsTheActivityAsOpened(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	a := created(t, env, 10, time.Now().Add(-time.Minute))
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionApprove); err != nil {
		t.Fatal(err)
	}
	repo := &reapprovingRepo{Repository: env.Repo, stock: 2}
	svc := activity.NewService(repo, env.Store, env.Repo, env.Signer, nil)
	if _, err := svc.Transition(ctx, a.ID, activity.ActionOpen); err != nil {
		t.Fatal(err)
	}
	if !repo.done {
		t.Fatal("the open did not go through the repository's SetState")
	}
	won := 0
	for i := range 10 {
		_, err := env.Svc.Join(ctx, a.ID, fmt.Sprintf("u%d", i), "")
		switch {
		case err == nil:
			won++
		case !errors.Is(err, activity.ErrSoldOut):
			t.Fatalf("join %d: %v", i, err)
		}
	}
	if won != 2 {
		t.Fatalf("%d tokens for an activity opened with stock 2", won)
	}
}
