package activity_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"seckill/activity"
	"seckill/activity/mysql"
	"seckill/internal/testenv"
	"seckill/stock"
)

// lostReplySlots: the first Preheat is applied by Redis but its reply is
// lost (a read timeout after the script ran), so the open rolls back.
type lostReplySlots struct {
	*stock.Store
	once sync.Once
}

func (s *lostReplySlots) Preheat(ctx context.Context, a *activity.Activity) error {
	err := s.Store.Preheat(ctx, a)
	lost := false
	s.once.Do(func() { lost = true })
	if err == nil && lost {
		return activity.Unavailable("redis", errors.New("preheat: i/o timeout"))
	}
	return err
}

// queueRecorder is the event log: Record acknowledges and keeps the event;
// the test plays the consumer with StoreEvents.
type queueRecorder struct {
	mu sync.Mutex
	ps []activity.Participation
}

func (q *queueRecorder) Record(_ context.Context, p activity.Participation) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ps = append(q.ps, p)
	return nil
}

func (q *queueRecorder) drain() []activity.Participation {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.ps
	q.ps = nil
	return out
}

// TestFailedOpenIsNotForgotten: an open whose preheat reply is lost rolls
// back to approved while Redis holds a live state that sells. The job must
// not take that state for a finished one and delete it: the open retried
// sells on from it, never the stock again.
func TestFailedOpenIsNotForgotten(t *testing.T) {
	ctx := context.Background()
	env, q := failedOpenEnv(t)
	env.Svc.SetRetention(time.Second)
	name, stockN, limit, shards := "x", int64(3), int64(1), 1
	a := failedOpen(t, env, activity.Fields{Name: &name, Stock: &stockN, PerUserLimit: &limit, Shards: &shards})
	var tokens []*activity.Participation
	join := func(user string) {
		if p, err := env.Svc.Join(ctx, a.ID, user, ""); err == nil {
			tokens = append(tokens, p)
		}
	}
	for i := range 3 {
		join(fmt.Sprintf("early%d", i))
	}
	if err := env.Svc.StoreEvents(ctx, q.drain()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // past the retention
	if _, err := env.Job.Cycle(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionOpen); err != nil {
		t.Fatalf("the open retried: %v", err)
	}
	for i := range 3 {
		join(fmt.Sprintf("late%d", i))
	}
	if err := env.Svc.StoreEvents(ctx, q.drain()); err != nil {
		t.Fatal(err)
	}
	env.Reconcile(t)
	if n, _ := env.Repo.CountRecorded(ctx, a.ID); n > stockN || len(tokens) > int(stockN) {
		t.Fatalf("%d tokens answered and %d valid records for stock %d", len(tokens), n, stockN)
	}
	for _, p := range tokens {
		if _, err := env.Svc.Token(ctx, p.Token); err != nil {
			t.Errorf("token answered 200: %v", err)
		}
	}
}

// TestRetentionWaitsForTheRecords: a closed activity past its retention
// keeps its Redis state while a token answered 200 has no valid record in
// MySQL yet; once the record is there, the state goes.
func TestRetentionWaitsForTheRecords(t *testing.T) {
	ctx := context.Background()
	q := &queueRecorder{}
	env := testenv.New(t, testenv.Options{Recorder: func(*mysql.Repository) activity.Recorder { return q }})
	env.Svc.SetRetention(time.Second)
	a := env.OpenActivity(t, 3, 1)
	p, err := env.Svc.Join(ctx, a.ID, "u1", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionClose); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // past the retention, the event still on its way
	if _, err := env.Job.Cycle(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Svc.Token(ctx, p.Token); err != nil {
		t.Fatalf("token answered 200, its record on its way: %v", err)
	}
	if err := env.Svc.StoreEvents(ctx, q.drain()); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Job.Cycle(ctx); err != nil {
		t.Fatal(err)
	}
	if keys := testenv.Keys(t, env.Redis, fmt.Sprintf("%s:{%d}:*", env.Prefix, a.ID)); len(keys) != 0 {
		t.Fatalf("keys left once everything was recorded: %v", keys)
	}
	if _, err := env.Svc.Token(ctx, p.Token); err != nil {
		t.Fatalf("token after the retention: %v", err)
	}
	// No cycle saw the claim while the activity was live: the stats, read
	// from MySQL now, must still give the sale.
	got, err := env.Svc.Get(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	st, err := env.Svc.Stats(ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	if st.Claimed != 1 || st.Issued != 1 || st.Recorded != 1 || st.Surplus != 2 {
		t.Fatalf("stats after the retention %+v, want 1 claimed, issued and recorded, surplus 2", *st)
	}
	if rem, err := env.Svc.Remaining(ctx, got); err != nil || rem != 2 {
		t.Fatalf("remaining after the retention %d (%v), want 2", rem, err)
	}
}

// failedOpenEnv returns a test environment whose first preheat lands but
// answers an error (lostReplySlots), with the recorder that keeps the
// events of its joins until the test stores them.
func failedOpenEnv(t *testing.T) (*testenv.Env, *queueRecorder) {
	t.Helper()
	q := &queueRecorder{}
	env := testenv.New(t, testenv.Options{
		Slots:    func(s *stock.Store) activity.SlotStore { return &lostReplySlots{Store: s} },
		Recorder: func(*mysql.Repository) activity.Recorder { return q },
	})
	return env, q
}

// failedOpen creates an activity of f, open for the next hour, approves it
// and opens it once: the open fails after its preheat landed.
func failedOpen(t *testing.T, env *testenv.Env, f activity.Fields) *activity.Activity {
	t.Helper()
	ctx := context.Background()
	begin, end := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	f.BeginAt, f.EndAt = &begin, &end
	a, err := env.Svc.Create(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionApprove); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionOpen); err == nil {
		t.Fatal("the open with its reply lost succeeded")
	}
	return a
}
