package activity_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"seckill/activity"
	"seckill/activity/mysql"
	"seckill/internal/testenv"
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
			p, err := svc.Join(context.Background(), id, u)
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
func checkSale(t *testing.T, env *testenv.Env, a *activity.Activity, answers []outcome, want int) {
	t.Helper()
	ctx := context.Background()
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
	k := env.Store.KeysOf(a.ID)
	locks, err := env.Redis.Keys(ctx, k.LockPrefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(locks) != 0 {
		t.Errorf("%d slot locks left: %v", len(locks), locks)
	}
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

func TestStorm(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
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

func TestPerUserLimit(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
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
// writing, half after (a timeout after the write), which the service must
// void.
type flakyRecorder struct {
	*mysql.Repository
	share float64
	mu    sync.Mutex
	fails int
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
	}
	return errInjected
}

func TestInjectedRecordFailures(t *testing.T) {
	rec := &flakyRecorder{share: 0.3}
	env := testenv.New(t, testenv.Options{Recorder: func(r *mysql.Repository) activity.Recorder {
		rec.Repository = r
		return rec
	}})
	a := env.OpenActivity(t, 100, 1)
	// Demand continues until every slot is issued: waves of new users.
	var answers []outcome
	for wave := 0; wave < 50; wave++ {
		if c, _, _ := env.Store.Counters(context.Background(), a.ID); c.Issued == a.Stock {
			break
		}
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
	t.Logf("%d record failures injected", rec.fails)
	checkSale(t, env, a, answers, 100)
}
