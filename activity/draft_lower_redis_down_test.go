package activity_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"seckill/activity"
	"seckill/internal/testenv"
)

// A draft of one shard that was never opened: lowering its stock is a
// MySQL edit, taken while Redis does not answer (the next open refuses a
// stock below what a kept state claimed).
func TestDraftOneShardLowerWhileRedisIsDown(t *testing.T) {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	env := testenv.New(t, testenv.Options{Redis: rdb})
	begin, end := time.Now().Add(time.Hour), time.Now().Add(2*time.Hour)
	name, stockN, limit := "x", int64(6), int64(1)
	a, err := env.Svc.Create(ctx, activity.Fields{Name: &name, Stock: &stockN, PerUserLimit: &limit, BeginAt: &begin, EndAt: &end})
	if err != nil {
		t.Skipf("create needs Redis: %v", err)
	}
	lower := int64(3)
	if _, err := env.Svc.Update(ctx, a.ID, activity.Fields{Stock: &lower}); err != nil {
		t.Errorf("lower of a draft never opened, Redis down: %v", err)
	}
	raise := int64(9)
	if _, err := env.Svc.Update(ctx, a.ID, activity.Fields{Stock: &raise}); err != nil {
		t.Errorf("raise of a draft never opened, Redis down: %v", err)
	}
}
