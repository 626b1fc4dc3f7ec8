package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"seckill/internal/testenv"
)

// Faults in which Redis comes back with a state that misses its last
// writes, in the middle of a storm: a restart from a snapshot, and a
// failover to a replica that lags. The state is there, so nothing looks
// lost; the test checks that the service notices anyway: no token answered
// 200 is lost, nothing is sold twice, and the sale ends with exactly the
// stock issued and recorded.

const (
	faultStock = 1000
	// faultRate is the storm's pace, joins per second, each by a new user.
	faultRate = 250
	// faultBatch is how many tokens are answered between the moments of a
	// fault: about 1.2 s of the storm.
	faultBatch = 300
)

// storm joins an activity with new users at a steady pace until stopped,
// each join on its own, at most 256 at a time.
type storm struct {
	mu      sync.Mutex
	answers []joinAnswer
	ok      atomic.Int64
	stopc   chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

func startStorm(t *testing.T, base string, id int64, perSecond int) *storm {
	t.Helper()
	s := &storm{stopc: make(chan struct{})}
	sem := make(chan struct{}, 256)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		start, sent := time.Now(), 0
		for {
			select {
			case <-s.stopc:
				return
			case <-tick.C:
			}
			due := int(time.Since(start).Seconds() * float64(perSecond))
			// Joins that could not start while 256 were waiting are not
			// made up for in a burst.
			sent = max(sent, due-perSecond/10)
			for ; sent < due; sent++ {
				select {
				case sem <- struct{}{}:
				case <-s.stopc:
					return
				}
				s.wg.Add(1)
				go func(i int) {
					defer s.wg.Done()
					defer func() { <-sem }()
					a := joinHTTP(base, id, fmt.Sprintf("storm%d", i))
					if a.status == http.StatusOK {
						s.ok.Add(1)
					}
					s.mu.Lock()
					s.answers = append(s.answers, a)
					s.mu.Unlock()
				}(sent)
			}
		}
	}()
	t.Cleanup(func() { s.stop() })
	return s
}

// stop ends the storm, waits for the joins in flight and returns every
// answer.
func (s *storm) stop() []joinAnswer {
	s.once.Do(func() { close(s.stopc) })
	s.wg.Wait()
	return s.snapshot()
}

func (s *storm) snapshot() []joinAnswer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]joinAnswer(nil), s.answers...)
}

// waitTokens waits until the storm has been answered n tokens.
func (s *storm) waitTokens(t *testing.T, n int64) {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("%d tokens answered", n), func() bool { return s.ok.Load() >= n })
}

// firstAfter waits until a join answers as want says after since and
// returns the first such answer.
func (s *storm) firstAfter(t *testing.T, since time.Time, what string, want func(joinAnswer) bool) joinAnswer {
	t.Helper()
	var first joinAnswer
	eventually(t, 30*time.Second, what, func() bool {
		for _, a := range s.snapshot() {
			if a.at.After(since) && want(a) && (first.at.IsZero() || a.at.Before(first.at)) {
				first = a
			}
		}
		return !first.at.IsZero()
	})
	return first
}

func answered(a joinAnswer) bool { return a.status != http.StatusServiceUnavailable }

func tokenAnswered(a joinAnswer) bool { return a.status == http.StatusOK }

// waitAnswered waits until n more joins have been answered a token or sold
// out.
func (s *storm) waitAnswered(t *testing.T, n int) {
	t.Helper()
	count := func() int {
		k := 0
		for _, a := range s.snapshot() {
			if a.status == http.StatusOK || a.code == "sold_out" {
				k++
			}
		}
		return k
	}
	want := count() + n
	eventually(t, 30*time.Second, fmt.Sprintf("%d more joins answered", n), func() bool { return count() >= want })
}

// checkStormAnswers fails on any answer but a token, sold out, or 503 (the
// state is missing or being rebuilt, or slots are in flight), and returns
// how many answered 503.
func checkStormAnswers(t *testing.T, answers []joinAnswer) int {
	t.Helper()
	unavailable := 0
	for _, a := range answers {
		switch {
		case a.status == http.StatusOK, a.code == "sold_out":
		case a.status == http.StatusServiceUnavailable:
			unavailable++
		default:
			t.Errorf("join of %s: %d %q, want 200, sold_out or 503", a.user, a.status, a.code)
		}
	}
	return unavailable
}

// redisInt reads an integer key on one node, 0 when it is missing.
func redisInt(t *testing.T, addr, key string) int64 {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	n, err := rdb.Get(context.Background(), key).Int64()
	if err != nil && err != redis.Nil {
		t.Fatalf("GET %s on %s: %v", key, addr, err)
	}
	return n
}

// saleSurvives checks the invariants after a fault: every token answered
// 200 is still valid, no more than the stock were answered, and with demand
// continuing the sale ends with exactly the stock issued and recorded.
func saleSurvives(t *testing.T, app *App, id int64, stock int, answers []joinAnswer) {
	t.Helper()
	unavailable := checkStormAnswers(t, answers)
	all := tokens(t, answers)
	t.Logf("storm: %d joins, %d tokens answered, %d answered 503", len(answers), len(all), unavailable)
	checkTokens(t, app.URL(), all)
	if len(all) > stock {
		t.Errorf("%d tokens answered 200 for stock %d", len(all), stock)
	}
	sellOut(t, app.URL(), app, id, stock, all)
	converged(t, app, id, int64(stock), int64(stock))
	checkTokens(t, app.URL(), all)
	t.Logf("sale over: %d tokens answered 200 in all, stock %d", len(all), stock)
}

// TestRedisSnapshotRestart restarts Redis in the middle of a storm from
// files that miss its last writes: an RDB snapshot taken by SAVE while the
// storm goes on, and an append-only file (appendfsync everysec) that loses
// what was written after its last fsync.
//
// everysec loses writes only when the machine dies: a SIGKILL of the
// process alone leaves them in the kernel, which writes them out. The test
// plays the machine's death: it marks how far the AOF reaches at one moment
// (as if the last fsync happened then), kills Redis after more joins, cuts
// the file back to the mark and starts Redis again on the same directory.
func TestRedisSnapshotRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		// snapshot is called at the moment of the last write that survives;
		// what it returns is called once Redis is killed, before it starts
		// again.
		snapshot func(t *testing.T, rs *testenv.RedisServer) (afterKill func())
	}{
		{"RDB", nil, func(t *testing.T, rs *testenv.RedisServer) func() {
			rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
			defer rdb.Close()
			if err := rdb.Save(context.Background()).Err(); err != nil {
				t.Fatalf("SAVE: %v", err)
			}
			return func() {}
		}},
		{"AOFEverysec", []string{"--appendonly", "yes", "--appendfsync", "everysec", "--auto-aof-rewrite-percentage", "0"},
			func(t *testing.T, rs *testenv.RedisServer) func() {
				mark := rs.MarkAOF()
				return func() { t.Logf("the AOF lost its last %d bytes", rs.LoseUnsynced(mark)) }
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := testenv.StartRedis(t, tc.args...)
			b := newBroker(t)
			cfg := kafkaConfig(t, b)
			cfg.RedisAddrs = []string{rs.Addr()}
			cfg.Lease = 2 * time.Second
			app := startApp(t, cfg)
			id := openActivity(t, app, faultStock, 1)
			h := recordHistory(t, app.URL(), id, faultStock, 1)
			issuedKey := app.Store.KeysOf(id).Issued

			s := startStorm(t, app.URL(), id, faultRate)
			s.waitTokens(t, faultBatch)
			afterKill := tc.snapshot(t, rs)
			kept := redisInt(t, rs.Addr(), issuedKey)
			s.waitTokens(t, s.ok.Load()+faultBatch)
			issued := redisInt(t, rs.Addr(), issuedKey)
			rs.Stop()
			afterKill()
			restarted := time.Now()
			rs.Start()
			if issued <= kept {
				t.Fatalf("issued %d at the snapshot, %d at the kill: nothing was lost", kept, issued)
			}
			t.Logf("Redis came back from files holding at most %d issued slots of the %d it had issued", kept, issued)

			// The storm goes on until joins answer again after the restart,
			// and a while longer.
			first := s.firstAfter(t, restarted, "a join answered other than 503 after the restart", answered)
			t.Logf("first answer other than 503 %v after the restart: %d %s", first.at.Sub(restarted).Round(time.Millisecond),
				first.status, first.code)
			s.waitAnswered(t, faultBatch/3)
			saleSurvives(t, app, id, faultStock, s.stop())
			h.check(t)
		})
	}
}

// TestClusterFailoverToLaggingReplica fails a Redis Cluster over to a
// replica that lags behind its master in the middle of a storm: the replica
// of the activity's master is frozen (SIGSTOP) and its replication link cut,
// the master goes on taking joins for about 1.2 s and is killed, and the
// replica, resumed, takes over (CLUSTER FAILOVER TAKEOVER) without the
// master's last writes.
//
// Cutting the link (CLIENT KILL TYPE replica on the master) makes the lag
// certain: a frozen replica alone would still find in its socket buffer
// whatever the kernel had carried before the master died.
//
// Joins must answer again within 2 s of the promotion: the App's Redis
// client must reach the promoted master within 2 s, and joins must be
// answered 200 within 2 s of the promotion, or of the rebuild of the
// activity's state (a new epoch in MySQL) when the loss is noticed.
func TestClusterFailoverToLaggingReplica(t *testing.T) {
	const backWithin = 2 * time.Second
	c := testenv.ClusterWithReplicas(t)
	b := newBroker(t)
	cfg := kafkaConfig(t, b)
	cfg.RedisAddrs = c.Addrs()
	cfg.Lease = 2 * time.Second
	app := startApp(t, cfg)
	// Twice the stock of the other storms: on a loaded machine the storm
	// sells more than planned before the kill, and the rebuild keeps every
	// record in doubt, so a join after the promotion must still find slots.
	const stock = 2 * faultStock
	id := openActivity(t, app, stock, 1)
	h := recordHistory(t, app.URL(), id, stock, 1)
	keys := app.Store.KeysOf(id)

	admin := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { admin.Close() })
	master := c.Node(testenv.MasterOf(t, admin, keys.Meta))
	replica := c.ReplicaOf(master.Addr())
	mrdb := redis.NewClient(&redis.Options{Addr: master.Addr()})
	defer mrdb.Close()
	rrdb := redis.NewClient(&redis.Options{Addr: replica.Addr()})
	defer rrdb.Close()
	ctx := context.Background()

	s := startStorm(t, app.URL(), id, faultRate)
	s.waitTokens(t, faultBatch)
	replica.Pause()
	if err := mrdb.ClientKillByFilter(ctx, "TYPE", "replica").Err(); err != nil {
		t.Fatalf("CLIENT KILL TYPE replica: %v", err)
	}
	kept := redisInt(t, master.Addr(), keys.Issued)
	s.waitTokens(t, s.ok.Load()+faultBatch)
	issued := redisInt(t, master.Addr(), keys.Issued)
	masterOffset := replOffset(t, mrdb)
	master.Stop()
	replica.Resume()
	eventually(t, 10*time.Second, "the replica sees its master gone", func() bool {
		return strings.Contains(rrdb.Info(ctx, "replication").Val(), "master_link_status:down")
	})
	if replicaOffset := replOffset(t, rrdb); replicaOffset >= masterOffset {
		t.Fatalf("replica at offset %d, master at %d when killed: the replica does not lag", replicaOffset, masterOffset)
	} else {
		t.Logf("the replica lags %d bytes of replication stream (issued at most %d when it froze, %d at the kill)",
			masterOffset-replicaOffset, kept, issued)
	}
	if err := rrdb.Do(ctx, "CLUSTER", "FAILOVER", "TAKEOVER").Err(); err != nil {
		t.Fatalf("CLUSTER FAILOVER TAKEOVER: %v", err)
	}
	eventually(t, 10*time.Second, "the replica is master", func() bool {
		return strings.Contains(rrdb.Info(ctx, "replication").Val(), "role:master")
	})
	promoted := time.Now()

	// When does the App's own client reach the promoted master, and when
	// is the activity's state rebuilt, if ever?
	clientBack := make(chan time.Duration, 1)
	go func() {
		for time.Since(promoted) < 30*time.Second {
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			err := app.rdb.Exists(pctx, keys.Meta).Err()
			cancel()
			if err == nil {
				clientBack <- time.Since(promoted)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		clientBack <- -1
	}()
	var rebuiltAt atomic.Pointer[time.Time]
	rebuildDone := make(chan struct{})
	go func() {
		defer close(rebuildDone)
		for time.Since(promoted) < 30*time.Second {
			var epoch int
			if err := app.db.Get(&epoch, "SELECT epoch FROM activities WHERE id = ?", id); err == nil && epoch > 1 {
				now := time.Now()
				rebuiltAt.Store(&now)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	firstOK := s.firstAfter(t, promoted, "a join answered 200 after the promotion", tokenAnswered)
	first := s.firstAfter(t, promoted, "a join answered other than 503 after the promotion", answered)
	back := <-clientBack
	s.waitAnswered(t, faultBatch/3)
	answers := s.stop()
	t.Logf("after the promotion: the App's client reached the new master in %v; first answer other than 503 after %v (%d %s); first token after %v",
		back.Round(time.Millisecond), first.at.Sub(promoted).Round(time.Millisecond), first.status, first.code,
		firstOK.at.Sub(promoted).Round(time.Millisecond))
	if back < 0 || back > backWithin {
		t.Errorf("the App's Redis client reached the promoted master %v after the promotion, want within %v", back, backWithin)
	}
	from, what := promoted, "promotion"
	if at := rebuiltAt.Load(); at != nil && at.Before(firstOK.at) {
		from, what = *at, "rebuild"
		t.Logf("the state was rebuilt %v after the promotion", at.Sub(promoted).Round(time.Millisecond))
	}
	if gap := firstOK.at.Sub(from); gap > backWithin {
		t.Errorf("the first join after the promotion answered 200 %v after the %s, want within %v", gap.Round(time.Millisecond), what, backWithin)
	}
	saleSurvives(t, app, id, stock, answers)
	h.check(t)
	<-rebuildDone
}

// replOffset is a node's replication offset (INFO replication
// master_repl_offset): how much of the stream it has written or applied.
func replOffset(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "replication").Result()
	if err != nil {
		t.Fatalf("INFO replication: %v", err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "master_repl_offset:"); ok {
			var n int64
			fmt.Sscan(v, &n)
			return n
		}
	}
	t.Fatalf("no master_repl_offset in INFO replication:\n%s", info)
	return 0
}
