package activity_test

// Shards rebuilt alone while stale states and late journals race with them.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"seckill/activity"
	"seckill/internal/testenv"
)

// TestShardedStaleGiverJournalMakesTheJobSellANumberTwice: stock 12 over 2
// shards (1-6, 7-12). Shard 0's users drain it and the last joins take
// numbers from shard 1 (a move, received and dropped from shard 1's
// journal). Shard 0 is lost and rebuilt alone by the job: its set of moves
// received starts empty. Shard 1 then comes back from an RDB snapshot taken
// between the carve and the receive: its journal holds the move again. The
// next cycle of the job finishes the moves before it rebuilds shard 1, and
// shard 0 takes the move's numbers a second time, as free, though tokens
// were answered on them. Every token answered must stay the only one of
// its slot, and the stock sell exactly once.
func TestShardedStaleGiverJournalMakesTheJobSellANumberTwice(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	const stockN = 12
	a := env.OpenSharded(t, stockN, 1, 2)
	keys := env.Store.ShardKeys(a.ID, 2)
	var answers []outcome
	for _, u := range testenv.HomedOn("zero", 8, 0, 2) {
		o := boundedJoin(env, a.ID, u)
		if o.err != nil {
			t.Fatalf("join of %s: %v", u, o.err)
		}
		answers = append(answers, o)
	}
	moves, err := env.Redis.SMembers(ctx, keys[0].Moved).Result()
	if err != nil || len(moves) != 1 {
		t.Fatalf("moves shard 0 received: %v %v, want one", moves, err)
	}
	owns, err := env.Redis.Get(ctx, keys[0].Owns).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	var runs []string
	for n := int64(7); n <= stockN; n++ {
		if n/8 < int64(len(owns)) && owns[n/8]&(0x80>>(n%8)) != 0 {
			runs = append(runs, fmt.Sprintf("%d %d", n, n))
		}
	}
	if len(runs) == 0 {
		t.Fatal("shard 0 took no numbers from shard 1")
	}
	env.Reconcile(t)
	loseShardKeys(t, env, a, 0, false)
	if rep := env.Reconcile(t); rep.Rebuilt != 1 {
		t.Fatalf("shard 0 lost: rebuilt %d activities, want 1", rep.Rebuilt)
	}
	// Shard 1 back from the snapshot: what it has now, but for the entry
	// of the move in its journal, and another master's history.
	entry := fmt.Sprintf("0:1:%d:0:%s", time.Now().Add(-time.Minute).Unix(), strings.Join(runs, " "))
	if err := env.Redis.HSet(ctx, keys[1].Moving, moves[0], entry).Err(); err != nil {
		t.Fatal(err)
	}
	loseShardKeys(t, env, a, 1, true)
	if rep := env.Reconcile(t); rep.Rebuilt != 1 {
		t.Fatalf("shard 1 stale: rebuilt %d activities, want 1", rep.Rebuilt)
	}
	var after []outcome
	for i := range 20 {
		after = append(after, boundedJoin(env, a.ID, fmt.Sprintf("late%d", i)))
	}
	expectOnly(t, after, activity.ErrSoldOut, activity.ErrLimitReached)
	checkSale(t, env, a, append(answers, after...), stockN)
}
