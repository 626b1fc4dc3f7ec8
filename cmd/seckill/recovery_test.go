package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"seckill/internal/testenv"
)

// TestRedisLoss loses the Redis state of an open activity in the middle of a
// join storm, by FLUSHDB and by a restart of a Redis without persistence:
// joins during the gap answer 503, the activity is rebuilt from MySQL, no
// answered token is lost, nothing is sold twice, and the sale ends with
// exactly the stock issued and recorded.
func TestRedisLoss(t *testing.T) {
	flush := func(addrs []string) {
		rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: addrs})
		defer rdb.Close()
		ctx := context.Background()
		var err error
		if cc, ok := rdb.(*redis.ClusterClient); ok {
			err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return c.FlushDB(ctx).Err() })
		} else {
			err = rdb.FlushDB(ctx).Err()
		}
		if err != nil {
			t.Error(err)
		}
	}
	for _, tc := range []struct {
		name  string
		redis func(t *testing.T) (addrs []string, lose func())
	}{
		{"FlushDB", func(t *testing.T) ([]string, func()) {
			rs := testenv.StartRedis(t)
			return []string{rs.Addr()}, func() { flush([]string{rs.Addr()}) }
		}},
		{"RestartWithoutPersistence", func(t *testing.T) ([]string, func()) {
			rs := testenv.StartRedis(t)
			return []string{rs.Addr()}, rs.Restart
		}},
		{"ClusterFlushDB", func(t *testing.T) ([]string, func()) {
			addrs := testenv.Cluster(t)
			return addrs, func() { flush(addrs) }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const stockN = 300
			addrs, lose := tc.redis(t)
			b := newBroker(t)
			cfg := kafkaConfig(t, b)
			cfg.RedisAddrs = addrs
			cfg.Lease = 2 * time.Second
			app := startApp(t, cfg)
			id := openActivity(t, app, stockN, 1)
			h := recordHistory(t, app.URL(), id, stockN, 1)

			// The storm: 100 at a time; Redis loses the state once 100
			// tokens have been answered.
			var answered atomic.Int64
			var once sync.Once
			lost := make(chan struct{})
			answers := make([]joinAnswer, 2000)
			sem := make(chan struct{}, 100)
			var wg sync.WaitGroup
			for i := range answers {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					a := joinHTTP(app.URL(), id, fmt.Sprintf("storm%d", i))
					answers[i] = a
					if a.status == http.StatusOK && answered.Add(1) == 100 {
						once.Do(func() { lose(); close(lost) })
					}
				}()
			}
			wg.Wait()
			select {
			case <-lost:
			default:
				t.Fatal("the storm ended before 100 tokens were answered: Redis was never lost")
			}
			unavailable := 0
			for _, a := range answers {
				switch {
				case a.status == http.StatusOK, a.code == "sold_out":
				case a.code == "unavailable", a.code == "slots_in_flight":
					unavailable++
				default:
					t.Fatalf("join of %s: %d %q, want 200, sold_out, unavailable or slots_in_flight", a.user, a.status, a.code)
				}
			}
			all := tokens(t, answers)
			t.Logf("%d tokens answered, %d joins answered 503 during the gap", len(all), unavailable)

			// Demand continues until the sale is over.
			sellOut(t, app.URL(), app, id, stockN, all)
			converged(t, app, id, stockN, stockN)
			checkTokens(t, app.URL(), all)
			var epoch int
			if err := app.db.Get(&epoch, "SELECT epoch FROM activities WHERE id = ?", id); err != nil {
				t.Fatal(err)
			}
			if epoch < 2 {
				t.Errorf("epoch %d: the state was not rebuilt", epoch)
			}
			h.check(t)
		})
	}
}
