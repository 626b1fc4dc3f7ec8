package activity_test

import (
	"context"
	"testing"
	"time"

	"seckill/activity"
	"seckill/internal/testenv"
)

// A draft never opened whose ID another activity used before (a database
// made again while Redis kept its keys: the case of Preheat's clearOthers)
// finds that activity's state in Redis. Preheated answers for the ID, not
// for this activity, so the draft's shards can never be edited, although
// its open would clear the other activity's state anyway.
func TestShardedReusedIDDraftShardsEditRefused(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	begin, end := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	name, stockN, limit, shards := "x", int64(6), int64(1), 1
	a, err := env.Svc.Create(ctx, activity.Fields{Name: &name, Stock: &stockN, PerUserLimit: &limit, BeginAt: &begin, EndAt: &end, Shards: &shards})
	if err != nil {
		t.Fatal(err)
	}
	// The other activity of the same ID, of the database before.
	old := &activity.Activity{ID: a.ID, Stock: 3, PerUserLimit: 1, State: activity.StateOpen, Shards: 2,
		BeginAt: begin, EndAt: end, CreatedAt: a.CreatedAt.Add(-time.Hour)}
	if err := env.Store.Preheat(ctx, old); err != nil {
		t.Fatal(err)
	}
	shards = 3
	if _, err := env.Svc.Update(ctx, a.ID, activity.Fields{Shards: &shards}); err != nil {
		t.Errorf("edit of the shards of a draft never opened: %v", err)
	}
}
