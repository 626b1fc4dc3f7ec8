package activity_test

import (
	"context"
	"testing"
	"time"

	"seckill/activity"
	"seckill/internal/testenv"
	"seckill/stock"
)

// otherInstance preheats through another Store on the same Redis and
// prefix: the open runs on another instance than the job.
type otherInstance struct {
	*stock.Store
	other *stock.Store
	pre   *gate
}

func (s *otherInstance) Preheat(ctx context.Context, a *activity.Activity) error {
	s.pre.pass()
	return s.other.Preheat(ctx, a)
}

// TestShardedOpenDuringARebuildWait is TestOpenDuringARebuildWait
// for an activity of three shards, the open on another instance than the
// job: the rebuild must find the live state the open made and leave it
// alone, not fence it and rebuild it in a new epoch.
func TestShardedOpenDuringARebuildWait(t *testing.T) {
	ctx := context.Background()
	pre, wait := newGate(), newGate()
	inst := &otherInstance{pre: pre}
	env := testenv.New(t, testenv.Options{Slots: func(s *stock.Store) activity.SlotStore {
		inst.Store = s
		return inst
	}})
	inst.other = stock.New(env.Redis, stock.Options{Prefix: env.Prefix})
	t.Cleanup(inst.other.Stop)
	env.Svc.UseEventLog(gatedLog{wait})
	begin, end := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	name, stockN, limit, shards := "race", int64(30), int64(1), 3
	a, err := env.Svc.Create(ctx, activity.Fields{Name: &name, Stock: &stockN, PerUserLimit: &limit, BeginAt: &begin, EndAt: &end, Shards: &shards})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionApprove); err != nil {
		t.Fatal(err)
	}
	opened := make(chan error, 1)
	go func() { _, err := env.Svc.Transition(ctx, a.ID, activity.ActionOpen); opened <- err }()
	<-pre.entered // open in MySQL, not yet in Redis
	cycle := make(chan error, 1)
	go func() { _, err := env.Job.Cycle(ctx); cycle <- err }()
	<-wait.entered // the rebuild waits for the event log
	close(pre.release)
	if err := <-opened; err != nil {
		t.Fatalf("open: %v", err)
	}
	close(wait.release)
	if err := <-cycle; err != nil {
		t.Fatalf("cycle: %v", err)
	}
	if got, _ := env.Repo.Activity(ctx, a.ID); got.Epoch != 1 {
		t.Fatalf("epoch %d, want 1: the live shards a sharded open made were fenced and rebuilt", got.Epoch)
	}
}
