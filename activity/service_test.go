package activity_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"seckill/activity"
	"seckill/activity/mysql"
	"seckill/internal/testenv"
	"seckill/stock"
)

// outcome is what one join answered.
type outcome struct {
	user string
	p    *activity.Participation
	err  error
}

// storm runs one join per entry of users, all at once, and returns the
// answers.
func storm(t *testing.T, svc *activity.Service, id int64, users []string) []outcome {
	t.Helper()
	out := make([]outcome, len(users))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			p, err := svc.Join(context.Background(), id, u, "")
			// As a client does: slots_in_flight means come back.
			for errors.Is(err, activity.ErrSlotsInFlight) {
				time.Sleep(5 * time.Millisecond)
				p, err = svc.Join(context.Background(), id, u, "")
			}
			out[i] = outcome{u, p, err}
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// checkSale asserts the invariants of a finished sale: exactly want tokens,
// distinct, on distinct slots in [1, stock], no user over the limit, the
// Redis counters and MySQL records agreeing, and no lock or lease left.
func checkSale(t *testing.T, env *testenv.Env, a *activity.Activity, answers []outcome, want int) activity.ReconcileReport {
	t.Helper()
	ctx := context.Background()
	rep := env.Reconcile(t)
	tokens := map[string]bool{}
	slots := map[int64]bool{}
	perUser := map[string]int64{}
	for _, o := range answers {
		if o.err != nil {
			continue
		}
		p := o.p
		if tokens[p.Token] {
			t.Errorf("token %s handed out twice", p.Token)
		}
		tokens[p.Token] = true
		if slots[p.Slot] {
			t.Errorf("slot %d handed out twice", p.Slot)
		}
		slots[p.Slot] = true
		if p.Slot < 1 || p.Slot > a.Stock {
			t.Errorf("slot %d outside [1, %d]", p.Slot, a.Stock)
		}
		perUser[p.UserID]++
		if perUser[p.UserID] > a.PerUserLimit {
			t.Errorf("user %s holds %d tokens, limit %d", p.UserID, perUser[p.UserID], a.PerUserLimit)
		}
		got, err := env.Svc.Token(ctx, p.Token)
		if err != nil || got.UserID != p.UserID || got.Slot != p.Slot {
			t.Errorf("token of %s: %+v, %v", p.UserID, got, err)
		}
	}
	if len(tokens) != want {
		t.Errorf("%d tokens handed out, want %d", len(tokens), want)
	}
	c, ok, err := env.Store.Counters(ctx, a.ID)
	if err != nil || !ok {
		t.Fatalf("counters: %v %v", ok, err)
	}
	if c != (activity.Counters{Claimed: int64(want), Issued: int64(want)}) {
		t.Errorf("counters %+v, want claimed = issued = %d and nothing in flight", c, want)
	}
	recorded, err := env.Repo.CountRecorded(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if recorded != int64(want) {
		t.Errorf("%d valid records in MySQL, want %d", recorded, want)
	}
	got, err := env.Repo.Activity(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Surplus != a.Stock-int64(want) {
		t.Errorf("surplus %d in MySQL, want %d", got.Surplus, a.Stock-int64(want))
	}
	if got.Recorded != recorded {
		t.Errorf("the activity's recorded count is %d, its valid records %d", got.Recorded, recorded)
	}
	k := env.Store.KeysOf(a.ID)
	if locks := testenv.Keys(t, env.Redis, k.LockPrefix+"*"); len(locks) != 0 {
		t.Errorf("%d slot locks left: %v", len(locks), locks)
	}
	return rep
}

// expectOnly fails on any answer that is neither success nor one of allowed.
func expectOnly(t *testing.T, answers []outcome, allowed ...error) {
	t.Helper()
	bad := 0
	for _, o := range answers {
		if o.err == nil {
			continue
		}
		ok := false
		for _, a := range allowed {
			ok = ok || errors.Is(o.err, a)
		}
		if !ok && bad < 5 {
			t.Errorf("join of %s: unexpected error %v", o.user, o.err)
			bad++
		}
	}
}

// eachRedis runs a test on the shared single Redis and on a three-master
// Redis Cluster of its own.
func eachRedis(t *testing.T, test func(t *testing.T, o testenv.Options)) {
	t.Run("SingleNode", func(t *testing.T) { test(t, testenv.Options{}) })
	t.Run("Cluster", func(t *testing.T) { test(t, testenv.Options{Redis: testenv.ClusterClient(t)}) })
}

func TestStorm(t *testing.T) { eachRedis(t, testStorm) }

func testStorm(t *testing.T, o testenv.Options) {
	env := testenv.New(t, o)
	a := env.OpenActivity(t, 100, 1)
	// 2,000 distinct users, and 500 of them joining a second time, racing.
	var users []string
	for i := range 2000 {
		users = append(users, fmt.Sprintf("u%d", i))
	}
	for i := range 500 {
		users = append(users, fmt.Sprintf("u%d", i*4))
	}
	rand.Shuffle(len(users), func(i, j int) { users[i], users[j] = users[j], users[i] })
	answers := storm(t, env.Svc, a.ID, users)
	expectOnly(t, answers, activity.ErrSoldOut, activity.ErrLimitReached)
	checkSale(t, env, a, answers, 100)
}

func TestPerUserLimit(t *testing.T) { eachRedis(t, testPerUserLimit) }

func testPerUserLimit(t *testing.T, o testenv.Options) {
	env := testenv.New(t, o)
	a := env.OpenActivity(t, 100, 3)
	users := make([]string, 50)
	for i := range users {
		users[i] = "greedy"
	}
	answers := storm(t, env.Svc, a.ID, users)
	expectOnly(t, answers, activity.ErrLimitReached)
	checkSale(t, env, a, answers, 3)
}

// flakyRecorder fails a share of the records: half of the failures before
// writing, half after (a timeout after the write), whose records must be
// settled void.
type flakyRecorder struct {
	*mysql.Repository
	share   float64
	mu      sync.Mutex
	fails   int
	written int // failures whose record was written
}

var errInjected = errors.New("injected record failure")

func (f *flakyRecorder) Record(ctx context.Context, p activity.Participation) error {
	r := rand.Float64()
	if r >= f.share {
		return f.Repository.Record(ctx, p)
	}
	f.mu.Lock()
	f.fails++
	f.mu.Unlock()
	if r < f.share/2 {
		if err := f.Repository.Record(ctx, p); err != nil {
			return err
		}
		f.mu.Lock()
		f.written++
		f.mu.Unlock()
	}
	return errInjected
}

func TestInjectedRecordFailures(t *testing.T) { eachRedis(t, testInjectedRecordFailures) }

func testInjectedRecordFailures(t *testing.T, o testenv.Options) {
	rec := &flakyRecorder{share: 0.3}
	o.Recorder = func(r *mysql.Repository) activity.Recorder {
		rec.Repository = r
		return rec
	}
	env := testenv.New(t, o)
	a := env.OpenActivity(t, 100, 1)
	// Demand continues until every slot is issued: waves of new users.
	var answers []outcome
	deadline := time.Now().Add(30 * time.Second)
	for wave := 0; time.Now().Before(deadline); wave++ {
		if c, _, _ := env.Store.Counters(context.Background(), a.ID); c.Issued == a.Stock {
			break
		}
		time.Sleep(10 * time.Millisecond) // an instance answers sold out from memory for a moment
		users := make([]string, 300)
		for i := range users {
			users[i] = fmt.Sprintf("w%d-u%d", wave, i)
		}
		answers = append(answers, storm(t, env.Svc, a.ID, users)...)
	}
	expectOnly(t, answers, activity.ErrSoldOut, activity.ErrUnavailable)
	if rec.fails == 0 {
		t.Fatal("no failure was injected")
	}
	t.Logf("%d record failures injected, %d of them after the write", rec.fails, rec.written)
	rep := checkSale(t, env, a, answers, 100)
	if rep.Void != rec.written {
		t.Errorf("%d records settled void, want the %d written by failed joins", rep.Void, rec.written)
	}
}

// lostRecorder acknowledges records without storing them, as if the event
// were still on its way to MySQL.
type lostRecorder struct{}

func (lostRecorder) Record(context.Context, activity.Participation) error { return nil }

func TestTokenBeforeItsRecordIsSettled(t *testing.T) {
	ctx := context.Background()
	t.Run("Pending", func(t *testing.T) {
		env := testenv.New(t, testenv.Options{})
		a := env.OpenActivity(t, 5, 1)
		p, err := env.Svc.Join(ctx, a.ID, "alice", "")
		if err != nil {
			t.Fatal(err)
		}
		if rec, err := env.Repo.Participation(ctx, p.Token); err != nil || rec.Status != activity.RecordPending {
			t.Fatalf("record before settling: %+v, %v; want pending", rec, err)
		}
		if _, err := env.Svc.Token(ctx, p.Token); err != nil {
			t.Fatalf("token with a pending record: %v", err)
		}
		env.Reconcile(t)
		if _, err := env.Svc.Token(ctx, p.Token); err != nil {
			t.Fatalf("token with a settled record: %v", err)
		}
	})
	t.Run("NotRecordedYet", func(t *testing.T) {
		env := testenv.New(t, testenv.Options{Recorder: func(*mysql.Repository) activity.Recorder { return lostRecorder{} }})
		a := env.OpenActivity(t, 5, 1)
		p, err := env.Svc.Join(ctx, a.ID, "alice", "")
		if err != nil {
			t.Fatal(err)
		}
		got, err := env.Svc.Token(ctx, p.Token)
		if err != nil {
			t.Fatalf("confirmed token without a record: %v", err)
		}
		if got.UserID != "alice" || got.Slot != p.Slot || !got.IssuedAt.Equal(p.IssuedAt) {
			t.Fatalf("token %+v, want %+v", got, p)
		}
	})
}

// TestGivenBackClaimNeverBecomesAToken plays every order of record, reap,
// confirm and settle for a claim whose process stalled past its lease.
func TestGivenBackClaimNeverBecomesAToken(t *testing.T) {
	ctx := context.Background()
	stall := &stallingRecorder{recorded: make(chan struct{}), release: make(chan struct{})}
	env := testenv.New(t, testenv.Options{Lease: 200 * time.Millisecond, Recorder: func(r *mysql.Repository) activity.Recorder {
		stall.Repository = r
		return stall
	}})
	a := env.OpenActivity(t, 1, 1)
	done := make(chan error, 1)
	var p *activity.Participation
	go func() {
		var err error
		p, err = env.Svc.Join(ctx, a.ID, "slow", "")
		done <- err
	}()
	<-stall.recorded // the record is written; the join is stalled before confirm
	time.Sleep(300 * time.Millisecond)
	if rep := env.Reconcile(t); rep.Reaped != 1 || rep.Void != 1 {
		t.Fatalf("reconcile: %+v, want the claim reaped and its record void", rep)
	}
	// The slot is sold again.
	q, err := env.Svc.Join(ctx, a.ID, "fast", "")
	if err != nil {
		t.Fatalf("join after the reap: %v", err)
	}
	close(stall.release)
	if err := <-done; !errors.Is(err, activity.ErrUnavailable) {
		t.Fatalf("stalled join: %v, %+v; want ErrUnavailable", err, p)
	}
	answers := []outcome{{user: "fast", p: q}}
	checkSale(t, env, a, answers, 1)
	if _, err := env.Svc.Token(ctx, stall.token); !errors.Is(err, activity.ErrNotFound) {
		t.Fatalf("token of the reaped claim: %v, want ErrNotFound", err)
	}
}

// stallingRecorder writes the first record, then blocks until released.
type stallingRecorder struct {
	*mysql.Repository
	once     sync.Once
	recorded chan struct{}
	release  chan struct{}
	token    string
}

func (s *stallingRecorder) Record(ctx context.Context, p activity.Participation) error {
	stalled := false
	s.once.Do(func() { stalled = true })
	if err := s.Repository.Record(ctx, p); err != nil || !stalled {
		return err
	}
	s.token = p.Token
	close(s.recorded)
	<-s.release
	return nil
}

func TestIdempotencyKey(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	a := env.OpenActivity(t, 10, 1)
	first, err := env.Svc.Join(ctx, a.ID, "alice", "key-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("RetryReturnsTheFirstAnswer", func(t *testing.T) {
		for range 3 {
			again, err := env.Svc.Join(ctx, a.ID, "alice", "key-1")
			if err != nil {
				t.Fatal(err)
			}
			if again.Token != first.Token || again.Slot != first.Slot || !again.IssuedAt.Equal(first.IssuedAt) {
				t.Fatalf("retry answered %+v, want %+v", again, first)
			}
		}
		if c, _, _ := env.Store.Counters(ctx, a.ID); c.Claimed != 1 {
			t.Fatalf("claimed %d after retries, want 1", c.Claimed)
		}
	})
	t.Run("OtherKeyListsTheHeldToken", func(t *testing.T) {
		_, err := env.Svc.Join(ctx, a.ID, "alice", "key-2")
		var le *activity.LimitError
		if !errors.As(err, &le) || len(le.Held) != 1 || le.Held[0].Token != first.Token {
			t.Fatalf("join with another key: %v, want limit reached listing %s", err, first.Token)
		}
	})
	t.Run("AfterTheRecordIsSettled", func(t *testing.T) {
		// Once the record is valid in MySQL, Redis keeps only alice's count:
		// the first answer and the held token are read from MySQL.
		env.Reconcile(t)
		if n := env.Redis.HLen(ctx, env.Store.KeysOf(a.ID).Confirmed).Val(); n != 0 {
			t.Fatalf("%d confirmed claims left in Redis after the records were settled", n)
		}
		again, err := env.Svc.Join(ctx, a.ID, "alice", "key-1")
		if err != nil || again.Token != first.Token || again.Slot != first.Slot || !again.IssuedAt.Equal(first.IssuedAt) {
			t.Fatalf("retry after settling answered %+v, %v; want %+v", again, err, first)
		}
		_, err = env.Svc.Join(ctx, a.ID, "alice", "key-2")
		var le *activity.LimitError
		if !errors.As(err, &le) || len(le.Held) != 1 || le.Held[0].Token != first.Token {
			t.Fatalf("join with another key after settling: %v, want limit reached listing %s", err, first.Token)
		}
		if c, _, _ := env.Store.Counters(ctx, a.ID); c.Claimed != 1 {
			t.Fatalf("claimed %d after retries, want 1", c.Claimed)
		}
	})
	t.Run("SameKeyOtherUser", func(t *testing.T) {
		p, err := env.Svc.Join(ctx, a.ID, "bob", "key-1")
		if err != nil || p.Token == first.Token || p.UserID != "bob" {
			t.Fatalf("bob with alice's key: %+v, %v; want a token of his own", p, err)
		}
	})
	t.Run("BadKey", func(t *testing.T) {
		if _, err := env.Svc.Join(ctx, a.ID, "carol", "no spaces"); !errors.Is(err, activity.ErrInvalid) {
			t.Fatalf("got %v, want ErrInvalid", err)
		}
	})
	t.Run("ConcurrentRetries", func(t *testing.T) {
		users := make([]string, 20)
		for i := range users {
			users[i] = "dave"
		}
		out := make([]outcome, len(users))
		var wg sync.WaitGroup
		for i := range users {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p, err := env.Svc.Join(ctx, a.ID, "dave", "dave-key")
				out[i] = outcome{"dave", p, err}
			}()
		}
		wg.Wait()
		tokens := map[string]bool{}
		for _, o := range out {
			switch {
			case o.err == nil:
				tokens[o.p.Token] = true
			case !errors.Is(o.err, activity.ErrUnavailable): // in flight: retry later
				t.Fatalf("concurrent retry: %v", o.err)
			}
		}
		if len(tokens) != 1 {
			t.Fatalf("%d distinct tokens for one idempotency key, want 1", len(tokens))
		}
	})
	t.Run("RetryAfterAFailureClaimsAnew", func(t *testing.T) {
		env := testenv.New(t, testenv.Options{Recorder: func(r *mysql.Repository) activity.Recorder {
			return &flakyRecorder{Repository: r, share: 1}
		}})
		a := env.OpenActivity(t, 1, 1)
		if _, err := env.Svc.Join(ctx, a.ID, "erin", "k"); !errors.Is(err, activity.ErrUnavailable) {
			t.Fatalf("failing join: %v", err)
		}
		if c, _, _ := env.Store.Counters(ctx, a.ID); c.Claimed != 0 {
			t.Fatalf("claimed %d after a failed join, want 0", c.Claimed)
		}
	})
}

// TestRetryAfterTheSellOut: stock 1. alice joins with an Idempotency-Key
// and gets the last slot; bob is told sold out, so the instance answers
// sold out from memory for a moment. alice's retry with her key, within
// that moment, must still get her first answer, not sold out.
func TestRetryAfterTheSellOut(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	a := env.OpenActivity(t, 1, 1)
	first, err := env.Svc.Join(ctx, a.ID, "alice", "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Svc.Join(ctx, a.ID, "bob", ""); !errors.Is(err, activity.ErrSoldOut) {
		t.Fatalf("bob: %v, want sold out", err)
	}
	again, err := env.Svc.Join(ctx, a.ID, "alice", "k")
	if err != nil {
		t.Fatalf("alice's retry right after the sell-out: %v, want her first answer", err)
	}
	if again.Token != first.Token || again.Slot != first.Slot {
		t.Fatalf("alice's retry answered %+v, want %+v", again, first)
	}
}

// TestActivitiesSpreadOverMasters shows that the keys of one activity stay on
// one master while activities land on different masters.
func TestActivitiesSpreadOverMasters(t *testing.T) {
	rdb := testenv.ClusterClient(t)
	env := testenv.New(t, testenv.Options{Redis: rdb})
	masters := map[string]bool{}
	for range 6 {
		a := env.OpenActivity(t, 5, 1)
		if _, err := env.Svc.Join(context.Background(), a.ID, "u", ""); err != nil {
			t.Fatal(err)
		}
		k := env.Store.KeysOf(a.ID)
		m := testenv.MasterOf(t, rdb, k.Meta)
		for _, key := range []string{k.Used, k.UserKey("u", stock.UserBuckets(5)), k.Leases, k.Lock(1), k.Confirmed} {
			if got := testenv.MasterOf(t, rdb, key); got != m {
				t.Fatalf("key %s on %s, the activity's meta on %s", key, got, m)
			}
		}
		masters[m] = true
	}
	if len(masters) < 2 {
		t.Fatalf("six activities all on one master: %v", masters)
	}
}
