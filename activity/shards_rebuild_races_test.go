package activity_test

// Shards rebuilt alone while stale states and late journals race with them.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"seckill/activity"
	"seckill/internal/testenv"
	"seckill/stock"
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

// TestShardedTwoInstancesRaceToRebuildWhileRaisingAndSelling: two
// instances on the same Redis and MySQL sell an activity of 3 shards, and
// both run the job all along with a lease so short that both do each
// activity's work at once. Shard 1 is lost and then shard 2 comes back
// stale, while the second instance raises the stock twice. Every token
// answered stays the only one of its slot, and the raised stock sells
// exactly once.
func TestShardedTwoInstancesRaceToRebuildWhileRaisingAndSelling(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	a := env.OpenSharded(t, 30, 1, 3)
	other := stock.New(env.Redis, stock.Options{Prefix: env.Prefix})
	t.Cleanup(other.Stop)
	svc2 := activity.NewService(env.Repo, other, env.Repo, env.Signer, testenv.Logger(t))
	env.Svc.SetJobLease("one", time.Millisecond)
	svc2.SetJobLease("two", time.Millisecond)
	var mu sync.Mutex
	var answers []outcome
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i, svc := range []*activity.Service{env.Svc, svc2} {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = svc.Reconcile(ctx)
				time.Sleep(2 * time.Millisecond)
			}
		}()
		go func() {
			defer wg.Done()
			for n := 0; n < 40; n++ {
				u := fmt.Sprintf("i%d-u%d", i, n)
				p, err := svc.Join(ctx, a.ID, u, "")
				for k := 0; k < 100 && (errors.Is(err, activity.ErrSlotsInFlight) || errors.Is(err, activity.ErrUnavailable)); k++ {
					time.Sleep(5 * time.Millisecond)
					p, err = svc.Join(ctx, a.ID, u, "")
				}
				mu.Lock()
				answers = append(answers, outcome{u, p, err})
				mu.Unlock()
				time.Sleep(3 * time.Millisecond)
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	loseShardKeys(t, env, a, 1, false)
	for _, want := range []int64{40, 50} {
		var err error
		for k := 0; k < 200; k++ {
			if _, err = svc2.ChangeStock(ctx, a.ID, want); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("raise to %d: %v", want, err)
		}
		if want == 40 {
			loseShardKeys(t, env, a, 2, true)
		}
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	env.Reconcile(t)
	var after []outcome
	for i := range 80 {
		after = append(after, boundedJoin(env, a.ID, fmt.Sprintf("late%d", i)))
	}
	expectOnly(t, after, activity.ErrSoldOut, activity.ErrLimitReached)
	var err error
	all := append(answers, after...)
	var sold []outcome
	for _, o := range all {
		switch {
		case o.err == nil:
			sold = append(sold, o)
		case errors.Is(o.err, activity.ErrLimitReached):
			// A join answered 503 (its shard lost between claim and
			// confirm) whose record was kept in doubt, its retry refused:
			// the stranded slot is the user's, as DecideLost allows.
			ps, err := env.Repo.UserParticipations(ctx, a.ID, o.user)
			if err != nil || len(ps) != 1 {
				t.Errorf("join of %s refused at the limit: records %+v, %v", o.user, ps, err)
				continue
			}
			sold = append(sold, outcome{o.user, &ps[0], nil})
		case !errors.Is(o.err, activity.ErrSoldOut):
			t.Errorf("join of %s: %v", o.user, o.err)
		}
	}
	if a, err = env.Svc.Get(ctx, a.ID); err != nil || a.Stock != 50 {
		t.Fatalf("the activity after the raises: %+v %v", a, err)
	}
	checkSale(t, env, a, sold, 50)
}

// TestShardedRetriesAndLimitOnAShardRebuiltAloneTwice: limit 2, stock 30
// over 3 shards. Users of shard 1 join with an Idempotency-Key, some once,
// some twice; shard 1 is lost and rebuilt alone, its users join again
// (new keys), and it comes back stale and is rebuilt alone again. Every
// retry of a key answers its first token, and no user holds more than 2.
func TestShardedRetriesAndLimitOnAShardRebuiltAloneTwice(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	a := env.OpenSharded(t, 30, 2, 3)
	users := testenv.HomedOn("one", 6, 1, 3)
	first := map[string]string{} // user:key -> token
	join := func(u, key string) {
		t.Helper()
		p, err := env.Svc.Join(ctx, a.ID, u, key)
		switch {
		case err == nil:
			if tok, ok := first[u+":"+key]; ok && tok != p.Token {
				t.Errorf("retry of %s's key %s: token %s, first %s", u, key, p.Token, tok)
			}
			first[u+":"+key] = p.Token
		case errors.Is(err, activity.ErrLimitReached):
			if _, ok := first[u+":"+key]; ok {
				t.Errorf("retry of %s's key %s answered limit reached, first a token", u, key)
			}
		default:
			t.Errorf("join of %s with key %s: %v", u, key, err)
		}
	}
	for i, u := range users {
		join(u, "k1")
		if i%2 == 0 {
			join(u, "k2")
		}
	}
	loseShardKeys(t, env, a, 1, false)
	if rep := env.Reconcile(t); rep.Rebuilt != 1 {
		t.Fatalf("rebuilt %d, want 1", rep.Rebuilt)
	}
	for _, u := range users {
		join(u, "k1")
		join(u, "k2")
		join(u, "k3")
	}
	loseShardKeys(t, env, a, 1, true)
	if rep := env.Reconcile(t); rep.Rebuilt != 1 {
		t.Fatalf("rebuilt %d, want 1", rep.Rebuilt)
	}
	for _, u := range users {
		for _, k := range []string{"k1", "k2", "k3", "k4"} {
			join(u, k)
		}
		ps, err := env.Repo.UserParticipations(ctx, a.ID, u)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range ps {
			if p.Status != activity.RecordVoid {
				n++
			}
		}
		if n > 2 {
			t.Errorf("user %s holds %d records, limit 2", u, n)
		}
	}
	held := 0
	for range first {
		held++
	}
	if held != 2*len(users) {
		t.Errorf("%d tokens answered, want %d", held, 2*len(users))
	}
}
