package stock_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"seckill/activity"
	"seckill/internal/testenv"
	"seckill/stock"
)

// privateStore returns a store on a redis-server of the test's own.
func privateStore(tb testing.TB, args ...string) (*testenv.RedisServer, *redis.Client, *stock.Store) {
	tb.Helper()
	srv := testenv.StartRedis(tb, args...)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), ReadTimeout: 30 * time.Second})
	tb.Cleanup(func() { rdb.Close() })
	s := stock.New(rdb, stock.Options{Lease: time.Minute})
	tb.Cleanup(s.Stop)
	return srv, rdb, s
}

// privateSale is privateStore with an open activity preheated: ID 1, stock
// 5, one slot per user.
func privateSale(t *testing.T, args ...string) (*testenv.RedisServer, *redis.Client, *stock.Store, *activity.Activity) {
	t.Helper()
	srv, rdb, s := privateStore(t, args...)
	a := &activity.Activity{ID: 1, Stock: 5, PerUserLimit: 1, State: activity.StateOpen,
		BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour)}
	if err := s.Preheat(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	return srv, rdb, s, a
}

// TestFenceAfterRestartFromSnapshot: Redis saves a snapshot mid-sale, sells
// on, crashes and starts again from the snapshot. The state that came back
// lacks the last writes and must not be taken for the live one by any
// script, until a rebuild makes it live again.
func TestFenceAfterRestartFromSnapshot(t *testing.T) {
	ctx := context.Background()
	srv, rdb, s := privateStore(t)
	a := &activity.Activity{ID: 5, Stock: 3, PerUserLimit: 1, State: activity.StateOpen,
		BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour)}
	if err := s.Preheat(ctx, a); err != nil {
		t.Fatal(err)
	}
	saved := claim(t, s, a.ID, "saved")
	if err := s.Confirm(ctx, saved, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	lost := claim(t, s, a.ID, "lost") // confirmed after the snapshot
	if err := s.Confirm(ctx, lost, time.Now()); err != nil {
		t.Fatal(err)
	}
	inFlight := claim(t, s, a.ID, "inflight")

	srv.Restart() // SIGKILL, then start on the same directory: the snapshot
	if n := rdb.Exists(ctx, s.KeysOf(a.ID).Meta).Val(); n != 1 {
		t.Fatalf("the snapshot did not come back (meta exists %d)", n)
	}

	c := activity.Claim{ActivityID: a.ID, UserID: "next", ClaimID: "next"}
	if err := s.Claim(ctx, &c); !errors.Is(err, activity.ErrNoState) {
		t.Fatalf("claim on the state from the snapshot: %v, want ErrNoState", err)
	}
	if err := s.Confirm(ctx, inFlight, time.Now()); !errors.Is(err, activity.ErrLeaseLost) {
		t.Fatalf("confirm on the state from the snapshot: %v, want ErrLeaseLost", err)
	}
	out, err := s.Settle(ctx, a.ID, []activity.Participation{
		{Slot: lost.Slot, ClaimID: lost.ClaimID, UserID: "lost", Epoch: lost.Epoch, Seq: lost.Seq}})
	if err != nil || out[0] != activity.OutcomeUnknown {
		t.Fatalf("settle of the lost confirm: %v %v, want unknown (never void from a stale state)", out, err)
	}
	if _, _, err := s.Confirmed(ctx, a.ID, lost.ClaimID); !errors.Is(err, activity.ErrNoState) {
		t.Fatalf("lookup of the lost confirm: %v, want ErrNoState", err)
	}
	if _, ok, err := s.Counters(ctx, a.ID); ok || err != nil {
		t.Fatalf("counters of the state from the snapshot: live %v %v, want not live", ok, err)
	}

	a.Epoch = 2
	valid := []activity.Participation{
		{ActivityID: a.ID, Slot: saved.Slot, UserID: "saved", ClaimID: saved.ClaimID, Epoch: 1, IssuedAt: time.Now()},
		{ActivityID: a.ID, Slot: lost.Slot, UserID: "lost", ClaimID: lost.ClaimID, Epoch: 1, IssuedAt: time.Now()},
	}
	if err := rebuild(t, s, a, valid); err != nil {
		t.Fatal(err)
	}
	if got := counters(t, s, a.ID); got != (activity.Counters{Claimed: 2, Issued: 2}) {
		t.Fatalf("rebuilt counters %+v, want 2 claimed and issued", got)
	}
	last := claim(t, s, a.ID, "next")
	if last.Epoch != 2 || last.Slot == saved.Slot || last.Slot == lost.Slot {
		t.Fatalf("claim after the rebuild: slot %d epoch %d", last.Slot, last.Epoch)
	}
}

// TestRebuildFencedByItsLock: a rebuild whose state lock is gone — Redis
// restarted and forgot it, or it ran out and another rebuilder may hold it —
// writes nothing, and nothing of it becomes live.
func TestRebuildFencedByItsLock(t *testing.T) {
	ctx := context.Background()
	srv, rdb, s := privateStore(t)
	a := &activity.Activity{ID: 6, Stock: 3, PerUserLimit: 1, State: activity.StateOpen, Epoch: 2,
		BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour)}
	valid := []activity.Participation{{ActivityID: a.ID, Slot: 1, UserID: "u", ClaimID: "c", Epoch: 1, IssuedAt: time.Now()}}
	for _, tc := range []struct {
		name string
		lose func(l *activity.Lock)
	}{
		{"RestartedRedis", func(*activity.Lock) { srv.Restart() }},
		{"TakenByAnother", func(l *activity.Lock) {
			rdb.Set(ctx, s.KeysOf(a.ID).State, "another rebuilder", time.Minute)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := s.Lock(ctx, a.ID, "state", time.Minute)
			if err != nil || l == nil {
				t.Fatalf("lock: %v %v", l, err)
			}
			tc.lose(l)
			if err := s.Rebuild(ctx, a, pagesOf(valid), l); !errors.Is(err, activity.ErrUnavailable) {
				t.Fatalf("rebuild without its lock: %v, want unavailable", err)
			}
			if _, ok, err := s.Counters(ctx, a.ID); ok || err != nil {
				t.Fatalf("state live after a fenced rebuild (%v)", err)
			}
			if n := rdb.Exists(ctx, s.KeysOf(a.ID).Used).Val(); n != 0 {
				t.Fatalf("a fenced rebuild wrote the used counter")
			}
			rdb.Del(ctx, s.KeysOf(a.ID).State)
		})
	}
}

// waitLinked waits until c, a replica, is in sync with its master.
func waitLinked(t *testing.T, c *redis.Client) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(c.Info(context.Background(), "replication").Val(), "master_link_status:up") {
		if time.Now().After(deadline) {
			t.Fatal("the replica did not come in sync")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitOffsets waits until the replica has every write of the master.
func waitOffsets(t *testing.T, master, replica *redis.Client) {
	t.Helper()
	offset := func(c *redis.Client, field string) string {
		info := c.Info(context.Background(), "replication").Val()
		i := strings.Index(info, field+":")
		if i < 0 {
			return ""
		}
		v, _, _ := strings.Cut(info[i+len(field)+1:], "\r\n")
		return v
	}
	deadline := time.Now().Add(10 * time.Second)
	for offset(master, "master_repl_offset") != offset(replica, "slave_repl_offset") {
		if time.Now().After(deadline) {
			t.Fatal("the replica did not catch up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFenceAfterADemotedMasterIsPromotedAgain: X is master, Y its replica.
// Y is promoted while it lags, and misses a token X confirms; X, never
// restarted (same run_id), rejoins as Y's replica — its data replaced by
// Y's stale copy — and is promoted back. The stale state must stay fenced
// on X: the one slot is not sold twice.
func TestFenceAfterADemotedMasterIsPromotedAgain(t *testing.T) {
	ctx := context.Background()
	x := testenv.StartRedis(t, "--repl-diskless-sync-delay", "0")
	y := testenv.StartRedis(t, "--repl-diskless-sync-delay", "0")
	xc := redis.NewClient(&redis.Options{Addr: x.Addr()})
	yc := redis.NewClient(&redis.Options{Addr: y.Addr()})
	t.Cleanup(func() { xc.Close(); yc.Close() })
	s := stock.New(xc, stock.Options{Lease: time.Minute})
	t.Cleanup(s.Stop)
	// The replica first: a master takes a new replication ID when its first
	// replica attaches.
	if err := yc.ReplicaOf(ctx, "127.0.0.1", strconv.Itoa(x.Port)).Err(); err != nil {
		t.Fatal(err)
	}
	waitLinked(t, yc)
	a := &activity.Activity{ID: 7, Stock: 1, PerUserLimit: 1, State: activity.StateOpen,
		BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour)}
	if err := s.Preheat(ctx, a); err != nil {
		t.Fatal(err)
	}
	waitOffsets(t, xc, yc)
	if err := yc.ReplicaOf(ctx, "NO", "ONE").Err(); err != nil { // Y promoted
		t.Fatal(err)
	}
	alice := claim(t, s, a.ID, "alice") // on X, which Y no longer follows
	if err := s.Confirm(ctx, alice, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := xc.ReplicaOf(ctx, "127.0.0.1", strconv.Itoa(y.Port)).Err(); err != nil {
		t.Fatal(err)
	}
	waitLinked(t, xc)
	if err := xc.ReplicaOf(ctx, "NO", "ONE").Err(); err != nil { // X promoted back
		t.Fatal(err)
	}
	if _, ok, err := s.Counters(ctx, a.ID); ok || err != nil {
		t.Fatalf("the stale state is live on X again (%v)", err)
	}
	bob := activity.Claim{ActivityID: a.ID, UserID: "bob", ClaimID: "bob"}
	if err := s.Claim(ctx, &bob); !errors.Is(err, activity.ErrNoState) {
		t.Fatalf("claim on the stale state: %v, want ErrNoState", err)
	}
	out, err := s.Settle(ctx, a.ID, []activity.Participation{
		{Slot: alice.Slot, ClaimID: alice.ClaimID, UserID: "alice", Epoch: alice.Epoch, Seq: alice.Seq}})
	if err != nil || out[0] != activity.OutcomeUnknown {
		t.Fatalf("settle of alice's token: %v %v, want unknown", out, err)
	}
}
