package activity_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"seckill/activity"
	"seckill/internal/testenv"
	"seckill/stock"
)

// draft creates a draft activity of the given stock, one per user, whose
// window begins an hour after now.
func draft(t *testing.T, env *testenv.Env, stockN int64) *activity.Activity {
	t.Helper()
	return created(t, env, stockN, time.Now().Add(time.Hour))
}

// created creates a draft activity of the given stock, one per user, whose
// window of an hour begins at begin.
func created(t *testing.T, env *testenv.Env, stockN int64, begin time.Time) *activity.Activity {
	t.Helper()
	name, limit, end := "draft", int64(1), begin.Add(time.Hour)
	a, err := env.Svc.Create(context.Background(), activity.Fields{Name: &name, Stock: &stockN, PerUserLimit: &limit, BeginAt: &begin, EndAt: &end})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestUpdateADraft: a draft takes new fields and its stock snapshot follows
// the stock; a wrong field changes nothing and names itself; an activity no
// longer a draft, or one that does not exist, is not edited.
func TestUpdateADraft(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	a := draft(t, env, 5)
	name, stockN := "renamed", int64(8)
	got, err := env.Svc.Update(ctx, a.ID, activity.Fields{Name: &name, Stock: &stockN})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != name || got.Stock != 8 || got.Surplus != 8 || got.PerUserLimit != 1 {
		t.Fatalf("updated %+v, want name %q, stock and surplus 8, limit kept", got, name)
	}
	zero := int64(0)
	_, err = env.Svc.Update(ctx, a.ID, activity.Fields{Stock: &zero})
	var verr *activity.ValidationError
	if !errors.As(err, &verr) || !errors.Is(err, activity.ErrInvalid) || verr.Field != "stock" ||
		!strings.HasPrefix(err.Error(), "stock: must be between 1 and ") {
		t.Fatalf("stock 0: %v, want a validation error of the stock", err)
	}
	if got, _ := env.Svc.Get(ctx, a.ID); got.Stock != 8 {
		t.Fatalf("a refused update changed the stock to %d", got.Stock)
	}
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionApprove); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Svc.Update(ctx, a.ID, activity.Fields{Name: &name}); !errors.Is(err, activity.ErrInvalidState) {
		t.Fatalf("update of an approved activity: %v, want ErrInvalidState", err)
	}
	if _, err := env.Svc.Update(ctx, a.ID+1000, activity.Fields{Name: &name}); !errors.Is(err, activity.ErrNotFound) {
		t.Fatalf("update of no activity: %v, want ErrNotFound", err)
	}
}

// TestNameBounds: a name is required and holds at most MaxNameLen
// characters, counted as characters, not bytes.
func TestNameBounds(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	a := draft(t, env, 5)
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"", false},
		{strings.Repeat("抽", activity.MaxNameLen), true},
		{strings.Repeat("a", activity.MaxNameLen+1), false},
	} {
		_, err := env.Svc.Update(ctx, a.ID, activity.Fields{Name: &c.name})
		var verr *activity.ValidationError
		switch {
		case c.ok && err != nil:
			t.Errorf("name of %d characters: %v", len([]rune(c.name)), err)
		case !c.ok && (!errors.As(err, &verr) || verr.Field != "name"):
			t.Errorf("name of %d characters: %v, want a validation error of the name", len([]rune(c.name)), err)
		}
	}
}

// TestUnavailableSaysWhatFailed: the error of a dependency names it and its
// cause, and matches both.
func TestUnavailableSaysWhatFailed(t *testing.T) {
	cause := errors.New("dial tcp: connection refused")
	err := activity.Unavailable("redis", cause)
	if want := "activity: dependency unavailable: redis: dial tcp: connection refused"; err.Error() != want {
		t.Fatalf("%q, want %q", err.Error(), want)
	}
	if !errors.Is(err, activity.ErrUnavailable) || !errors.Is(err, cause) {
		t.Fatal("the error matches neither ErrUnavailable nor its cause")
	}
}

// TestRemainingCountsLiveClaims: what users see left is the stock less the
// slots claimed, in flight or issued.
func TestRemainingCountsLiveClaims(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	a := env.OpenActivity(t, 5, 1)
	for _, u := range []string{"ann", "bob"} {
		if _, err := env.Svc.Join(ctx, a.ID, u, ""); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := env.Svc.Remaining(ctx, a); err != nil || n != 3 {
		t.Fatalf("remaining %d %v, want 3", n, err)
	}
	st, err := env.Svc.Stats(ctx, a)
	if err != nil || st.Claimed != 2 || st.Issued != 2 || st.InFlight != 0 {
		t.Fatalf("stats %+v %v, want 2 claimed and issued", st, err)
	}
}

// TestTransitionReturnsTheNewState: each action answers the activity as it
// is after it, as MySQL keeps it.
func TestTransitionReturnsTheNewState(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	a := created(t, env, 3, time.Now().Add(-time.Minute))
	for _, c := range []struct {
		action activity.Action
		want   activity.State
	}{
		{activity.ActionApprove, activity.StateApproved},
		{activity.ActionOpen, activity.StateOpen},
		{activity.ActionClose, activity.StateClosed},
	} {
		got, err := env.Svc.Transition(ctx, a.ID, c.action)
		if err != nil || got == nil || got.State != c.want {
			t.Fatalf("%s: %+v %v, want the activity %s", c.action, got, err, c.want)
		}
	}
}

// lockLog records the activities whose rebuild lock is asked for, in order.
type lockLog struct {
	*stock.Store
	mu  sync.Mutex
	ids []int64
}

func (l *lockLog) Lock(ctx context.Context, id int64, name string, ttl time.Duration) (*activity.Lock, error) {
	if name == "rebuild" {
		l.mu.Lock()
		l.ids = append(l.ids, id)
		l.mu.Unlock()
	}
	return l.Store.Lock(ctx, id, name, ttl)
}

// TestReconcileRebuildsOpenSalesFirst: when Redis lost every state, the
// cycle rebuilds the open activities before the closed ones, whatever
// their order in MySQL.
func TestReconcileRebuildsOpenSalesFirst(t *testing.T) {
	ctx := context.Background()
	log := &lockLog{}
	env := testenv.New(t, testenv.Options{Slots: func(s *stock.Store) activity.SlotStore { log.Store = s; return log }})
	closed := env.OpenActivity(t, 3, 1)
	if _, err := env.Svc.Transition(ctx, closed.ID, activity.ActionClose); err != nil {
		t.Fatal(err)
	}
	open := env.OpenActivity(t, 3, 1)
	testenv.DeletePrefix(env.Redis, env.Prefix)
	if rep := env.Reconcile(t); rep.Rebuilt != 2 {
		t.Fatalf("%d rebuilt, want 2", rep.Rebuilt)
	}
	if len(log.ids) < 2 || log.ids[0] != open.ID {
		t.Fatalf("rebuilt in the order %v, want the open activity %d first", log.ids, open.ID)
	}
}

// TestOpenWaitsForTheStateLock: an open that finds the state lock taken (a
// rebuild, a close on another instance) waits for it instead of failing.
func TestOpenWaitsForTheStateLock(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	a := created(t, env, 3, time.Now().Add(-time.Minute))
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionApprove); err != nil {
		t.Fatal(err)
	}
	l, err := env.Store.Lock(ctx, a.ID, "state", time.Minute)
	if err != nil || l == nil {
		t.Fatalf("state lock: %v %v", l, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := env.Svc.Transition(ctx, a.ID, activity.ActionOpen)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the open went ahead while the state lock was held: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	l.Release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("open once the state lock is released: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the open still waits 10 s after the state lock was released")
	}
	if _, err := env.Svc.Join(ctx, a.ID, "ann", ""); err != nil {
		t.Fatalf("join after the open: %v", err)
	}
}
