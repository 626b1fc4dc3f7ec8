package activity_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"seckill/activity"
	"seckill/activity/mysql"
	"seckill/internal/testenv"
	"seckill/stock"
)

// downHook fails the scripts run on the keys of one hash tag while set: the
// master of that shard does not answer.
type downHook struct{ tag atomic.Pointer[string] }

func (h *downHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *downHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if tag := h.tag.Load(); tag != nil && (cmd.Name() == "evalsha" || cmd.Name() == "eval") {
			for _, a := range cmd.Args() {
				if s, ok := a.(string); ok && strings.HasPrefix(s, *tag) {
					err := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("i/o timeout")}
					cmd.SetErr(err)
					return err
				}
			}
		}
		return next(ctx, cmd)
	}
}
func (h *downHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// partialSlots: the first open's preheat lands on shard 0 and fails on
// shard 1, whose master does not answer.
type partialSlots struct {
	*stock.Store
	hook  *downHook
	first atomic.Bool
}

func (s *partialSlots) Preheat(ctx context.Context, a *activity.Activity) error {
	if s.first.CompareAndSwap(false, true) {
		m := s.ShardKeys(a.ID, a.Shards)[1].Meta
		tag := m[:strings.LastIndex(m, "}:")+2]
		s.hook.tag.Store(&tag)
		defer s.hook.tag.Store(nil)
	}
	return s.Store.Preheat(ctx, a)
}

// An open of a 2-shard activity of 6 fails half way: shard 0's state
// landed, shard 1's master did not answer. The approved activity's stock
// is raised to 12 (checkOpenedOnce lets a raise through) and it is opened
// again: shard 1 is made at the split of 6, as shard 0 was, and the raise
// gives 7-12 to shard 0; 30 joins get exactly 12 tokens, no slot twice.
func TestShardedRaiseAfterHalfLandedOpen(t *testing.T) {
	ctx := context.Background()
	hook := &downHook{}
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr()})
	rdb.AddHook(hook)
	t.Cleanup(func() { rdb.Close() })
	q := &queueRecorder{}
	env := testenv.New(t, testenv.Options{
		Redis:    rdb,
		Slots:    func(s *stock.Store) activity.SlotStore { return &partialSlots{Store: s, hook: hook} },
		Recorder: func(*mysql.Repository) activity.Recorder { return q },
	})
	begin, end := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	name, stockN, limit, shards := "x", int64(6), int64(1), 2
	a, err := env.Svc.Create(ctx, activity.Fields{Name: &name, Stock: &stockN, PerUserLimit: &limit, BeginAt: &begin, EndAt: &end, Shards: &shards})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionApprove); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionOpen); err == nil {
		t.Fatal("the open with shard 1 down succeeded")
	} else {
		t.Logf("first open: %v", err)
	}
	if _, err := env.Svc.ChangeStock(ctx, a.ID, 12); err != nil {
		t.Fatalf("raise while approved: %v", err)
	}
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionOpen); err != nil {
		t.Fatalf("the open retried: %v", err)
	}
	tokens := 0
	slots := map[int64]int{}
	for i := range 30 {
		p, err := env.Svc.Join(ctx, a.ID, fmt.Sprintf("u%d", i), "")
		if err == nil {
			tokens++
			slots[p.Slot]++
		}
	}
	if err := env.Svc.StoreEvents(ctx, q.drain()); err != nil {
		t.Fatal(err)
	}
	for slot, n := range slots {
		if n > 1 {
			t.Errorf("slot %d issued %d times", slot, n)
		}
	}
	if tokens != 12 {
		t.Errorf("%d tokens of 30 joins for a stock of 12", tokens)
	}
}
