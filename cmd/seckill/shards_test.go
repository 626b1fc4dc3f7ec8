package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"seckill/internal/testenv"
	"seckill/stock"
)

// One hot activity spread over the three masters of a Redis Cluster:
// "shards": 3. The storm sells exactly the stock with the per-user limit
// across the shards and spreads Redis's work evenly over the masters; users
// who all live on one shard still buy the whole stock; one shard's master
// flushed in the middle of a storm loses no token and oversells nothing.

// openSharded creates, approves and opens an activity of the given number
// of shards through the admin API.
func openSharded(t *testing.T, app *App, stockN, perUser, shards int) int64 {
	t.Helper()
	begin := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	end := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	var a struct {
		ID     int64
		Shards int
	}
	body := fmt.Sprintf(`{"name":"hot","stock":%d,"perUserLimit":%d,"shards":%d,"beginAt":%q,"endAt":%q}`,
		stockN, perUser, shards, begin, end)
	if code := send(t, app, "POST", "/api/v1/admin/activities", body, &a); code != http.StatusCreated || a.Shards != shards {
		t.Fatalf("create: %d, shards %d", code, a.Shards)
	}
	for _, action := range []string{"approve", "open"} {
		if code := send(t, app, "POST", fmt.Sprintf("/api/v1/admin/activities/%d/%s", a.ID, action), "", nil); code != http.StatusOK {
			t.Fatalf("%s: %d", action, code)
		}
	}
	return a.ID
}

// commandCalls is the number of commands each node has run, by INFO
// commandstats.
func commandCalls(t *testing.T, addrs []string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, addr := range addrs {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		info, err := rdb.Info(context.Background(), "commandstats").Result()
		rdb.Close()
		if err != nil {
			t.Fatalf("INFO commandstats on %s: %v", addr, err)
		}
		for _, line := range strings.Split(info, "\n") {
			if !strings.HasPrefix(line, "cmdstat_") {
				continue
			}
			_, rest, _ := strings.Cut(line, "calls=")
			n, _, _ := strings.Cut(rest, ",")
			calls, _ := strconv.ParseInt(n, 10, 64)
			out[addr] += calls
		}
	}
	return out
}

// perUserAtMost fails t when a user was answered more than limit tokens.
func perUserAtMost(t *testing.T, all map[string]joinAnswer, limit int) {
	t.Helper()
	n := map[string]int{}
	for _, a := range all {
		if n[a.user]++; n[a.user] > limit {
			t.Errorf("user %s answered %d tokens, limit %d", a.user, n[a.user], limit)
		}
	}
}

func TestShardsOnACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster of three masters")
	}
	addrs := testenv.Cluster(t)
	b := newBroker(t)
	cfg := kafkaConfig(t, b)
	cfg.RedisAddrs = addrs
	cfg.Lease = 2 * time.Second
	app := startApp(t, cfg)
	admin := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { admin.Close() })
	ctx := context.Background()

	t.Run("Storm", func(t *testing.T) {
		const stockN, limit, crowdN = 600, 2, 800
		id := openSharded(t, app, stockN, limit, 3)
		masters, err := app.Store.Placement(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Sort(masters); len(slices.Compact(slices.Clone(masters))) != 3 {
			t.Fatalf("three shards on masters %v, want three distinct", masters)
		}
		// Every user joins twice at once, and the crowd again for more
		// than the stock: a third of the calls are limit_reached.
		us := users("hot", crowdN)
		before := commandCalls(t, addrs)
		answers := crowd(app.URL(), id, append(slices.Clone(us), us...), 64)
		after := commandCalls(t, addrs)
		all := tokens(t, answers)
		if len(all) != stockN {
			t.Errorf("%d tokens answered for stock %d", len(all), stockN)
		}
		perUserAtMost(t, all, limit)
		for _, a := range answers {
			if a.status != http.StatusOK && a.code != "sold_out" && a.code != "limit_reached" {
				t.Errorf("join of %s: %d %s", a.user, a.status, a.code)
			}
		}
		checkTokens(t, app.URL(), all)
		converged(t, app, id, stockN, stockN)
		for j, k := range app.Store.ShardKeys(id, 3) {
			m := testenv.MasterOf(t, admin, k.Meta)
			rdb := redis.NewClient(&redis.Options{Addr: m})
			issued, err := rdb.Get(ctx, k.Issued).Int64()
			rdb.Close()
			if err != nil || issued == 0 {
				t.Errorf("shard %d on %s: issued %d, %v", j, m, issued, err)
			}
		}
		// The spread of the storm's commands over the masters.
		var total int64
		for _, a := range addrs {
			total += after[a] - before[a]
		}
		for _, a := range addrs {
			d := after[a] - before[a]
			share := float64(d) / float64(total) * 3
			t.Logf("master %s: %d commands during the storm, %.2f of a third", a, d, share)
			if share < 0.8 || share > 1.2 {
				t.Errorf("master %s ran %d of %d commands (%.2f of a third), want within ±20%%", a, d, total, share)
			}
		}
	})

	t.Run("UnevenDrain", func(t *testing.T) {
		const stockN = 240
		id := openSharded(t, app, stockN, 1, 3)
		answers := crowd(app.URL(), id, testenv.HomedOn("drain", stockN+60, 0, 3), 64)
		all := tokens(t, answers)
		if len(all) != stockN {
			t.Errorf("%d tokens answered for stock %d, every user on one shard", len(all), stockN)
		}
		checkTokens(t, app.URL(), all)
		converged(t, app, id, stockN, stockN)
	})

	t.Run("ShardMasterFlushed", func(t *testing.T) {
		id := openSharded(t, app, faultStock, 1, 3)
		h := recordHistory(t, app.URL(), id, faultStock, 1)
		keys := app.Store.ShardKeys(id, 3)
		master := testenv.MasterOf(t, admin, keys[1].Meta)
		mrdb := redis.NewClient(&redis.Options{Addr: master})
		defer mrdb.Close()

		s := startStorm(t, app.URL(), id, faultRate)
		s.waitTokens(t, faultBatch)
		if err := mrdb.FlushAll(ctx).Err(); err != nil {
			t.Fatalf("FLUSHALL on %s: %v", master, err)
		}
		flushed := time.Now()
		first := s.firstAfter(t, flushed, "a join answered 200 after the flush", tokenAnswered)
		t.Logf("shard 1's master %s flushed; first token after it %v later", master, first.at.Sub(flushed).Round(time.Millisecond))
		s.firstAfter(t, flushed, "a join of shard 1 answered 200 after the flush", func(a joinAnswer) bool {
			return a.status == http.StatusOK && stock.HomeShard(a.user, 3) == 1
		})
		s.waitAnswered(t, faultBatch/3)
		answers := s.stop()
		byTime := slices.Clone(answers)
		slices.SortFunc(byTime, func(a, b joinAnswer) int { return a.at.Compare(b.at) })
		// Until shard 1 is rebuilt (its first token after the flush), its
		// users are refused; the other shards' users are not, then or after:
		// they go on selling all along.
		back := time.Time{}
		refused, others := 0, 0
		for _, a := range byTime {
			if !a.at.After(flushed) {
				continue
			}
			lost := stock.HomeShard(a.user, 3) == 1
			switch {
			case lost && a.status == http.StatusOK && back.IsZero():
				back = a.at
			case lost && a.status == http.StatusServiceUnavailable:
				refused++
			case !lost && a.status == http.StatusOK && back.IsZero():
				others++
			case !lost && a.code == "unavailable":
				t.Errorf("join of %s on a live shard %v after the flush: %d %s", a.user, a.at.Sub(flushed).Round(time.Millisecond), a.status, a.code)
			}
		}
		if back.IsZero() {
			t.Fatal("shard 1's users got no token after the flush")
		}
		t.Logf("shard 1 answered again %v after the flush; meanwhile %d of its joins answered 503 and the other shards issued %d tokens",
			back.Sub(flushed).Round(time.Millisecond), refused, others)
		saleSurvives(t, app, id, faultStock, answers)
		h.check(t)
		// Shard 1 alone was rebuilt, in an epoch of its own.
		var epochs string
		if err := app.db.Get(&epochs, "SELECT shard_epochs FROM activities WHERE id = ?", id); err != nil || epochs != "1 2 1" {
			t.Errorf("shard epochs %q (%v) after shard 1's master was flushed, want \"1 2 1\"", epochs, err)
		}
	})
}

// On one Redis node, K shards keep the same semantics: the storm sells
// exactly the stock, nobody over the limit.
func TestShardsOnOneNode(t *testing.T) {
	b := newBroker(t)
	app := startApp(t, kafkaConfig(t, b))
	const stockN, limit = 200, 2
	id := openSharded(t, app, stockN, limit, 4)
	us := users("one", 300)
	answers := crowd(app.URL(), id, append(slices.Clone(us), us...), 64)
	all := tokens(t, answers)
	if len(all) != stockN {
		t.Errorf("%d tokens answered for stock %d", len(all), stockN)
	}
	perUserAtMost(t, all, limit)
	checkTokens(t, app.URL(), all)
	converged(t, app, id, stockN, stockN)
}
