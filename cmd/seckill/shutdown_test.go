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
	"seckill/stock"
)

// TestShutdownUnderLoad shuts the server down in the middle of a storm: it
// returns cleanly, every join it was serving ends confirmed or released (no
// claim is left in flight), and no token it answered is lost.
func TestShutdownUnderLoad(t *testing.T) {
	b := newBroker(t)
	cfg := kafkaConfig(t, b)
	app := startApp(t, cfg)
	id := openActivity(t, app, 5000, 1)
	base := app.URL()

	var answered atomic.Int64
	var mu sync.Mutex
	got := map[string]joinAnswer{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var seq atomic.Int64
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				a := joinHTTP(base, id, fmt.Sprintf("u%d", seq.Add(1)))
				if a.status == http.StatusOK {
					answered.Add(1)
					mu.Lock()
					got[a.token] = a
					mu.Unlock()
				}
				if a.status == 0 {
					time.Sleep(10 * time.Millisecond) // the server is gone
				}
			}
		}()
	}
	eventually(t, 30*time.Second, "load under way", func() bool { return answered.Load() >= 300 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := app.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown under load: %v", err)
	}
	close(stop)
	wg.Wait()

	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr()})
	defer rdb.Close()
	keys := stock.New(rdb, stock.Options{Prefix: cfg.RedisPrefix}).KeysOf(id)
	if n := rdb.ZCard(context.Background(), keys.Leases).Val(); n != 0 {
		t.Fatalf("%d claims left in flight after shutdown", n)
	}
	issued, _ := rdb.Get(context.Background(), keys.Issued).Int64()
	t.Logf("%d tokens answered before shutdown, %d issued", len(got), issued)
	if int64(len(got)) != issued {
		t.Errorf("%d tokens answered, %d issued: every join must end answered or given back", len(got), issued)
	}

	// Started again, the records of every answered token are there.
	again := startApp(t, cfg)
	converged(t, again, id, 5000, issued)
	checkTokens(t, again.URL(), got)
}
