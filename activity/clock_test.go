package activity

import (
	"context"
	"testing"
	"time"
)

// clockRepo is a repository holding one activity.
type clockRepo struct {
	Repository
	a *Activity
}

func (r *clockRepo) LiveActivities(context.Context, time.Duration) ([]*Activity, error) {
	return []*Activity{r.a}, nil
}
func (r *clockRepo) Activity(context.Context, int64) (*Activity, error) { c := *r.a; return &c, nil }
func (r *clockRepo) SetSurplus(context.Context, int64, int64, int64, time.Time) error {
	now := time.Now()
	r.a.ReconciledAt = &now
	return nil
}
func (r *clockRepo) DueActivities(context.Context, time.Time, time.Time) ([]*Activity, error) {
	return nil, nil
}
func (r *clockRepo) PendingParticipations(context.Context, int) ([]Participation, error) {
	return nil, nil
}
func (r *clockRepo) SetSummary(_ context.Context, _ int64, m Summary) error {
	if r.a.State == StateClosed {
		r.a.Summary = &m
	}
	return nil
}
func (r *clockRepo) SetState(_ context.Context, _ int64, from, to State) error {
	if r.a.State != from {
		return ErrInvalidState
	}
	r.a.State = to
	return nil
}

// clockSlots is a slot store with a clock of its own.
type clockSlots struct {
	SlotStore
	now    time.Time
	closed bool
}

func (s *clockSlots) Learn(*Activity)                               {}
func (s *clockSlots) Now(context.Context, int64) (time.Time, error) { return s.now, nil }
func (s *clockSlots) Close(context.Context, int64) error            { s.closed = true; return nil }
func (s *clockSlots) Reap(context.Context, int64, int) (int, error) { return 0, nil }
func (s *clockSlots) Counters(context.Context, int64) (Counters, bool, error) {
	return Counters{}, true, nil
}
func (s *clockSlots) Listed(context.Context) ([]int64, error) { return nil, nil }
func (s *clockSlots) Unlist(context.Context, []int64) error   { return nil }
func (s *clockSlots) Drop(context.Context, int64) error       { return nil }
func (s *clockSlots) Lease(context.Context, int64, string, time.Duration) (bool, error) {
	return true, nil
}
func (s *clockSlots) Lock(_ context.Context, _ int64, name string, ttl time.Duration) (*Lock, error) {
	return &Lock{Name: name, TTL: ttl, Release: func() {}}, nil
}

// TestCloseByTheSlotStoreClock: an instance whose own clock runs an hour
// fast must not end the sale early for everyone: the job closes by the
// clock the claims go by.
func TestCloseByTheSlotStoreClock(t *testing.T) {
	redisNow := time.Date(2026, 11, 11, 12, 0, 0, 0, time.UTC)
	a := &Activity{ID: 1, Stock: 10, State: StateOpen, BeginAt: redisNow.Add(-time.Hour), EndAt: redisNow.Add(time.Minute)}
	repo, slots := &clockRepo{a: a}, &clockSlots{now: redisNow}
	svc := NewService(repo, slots, nil, nil, nil)
	svc.now = func() time.Time { return redisNow.Add(time.Hour) } // this instance's clock
	rep, err := svc.Reconcile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Closed != 0 || slots.closed || a.State != StateOpen {
		t.Fatalf("closed by the instance's fast clock (report %+v, state %s)", rep, a.State)
	}
	slots.now = a.EndAt
	if rep, err = svc.Reconcile(context.Background()); err != nil || rep.Closed != 1 || !slots.closed || a.State != StateClosed {
		t.Fatalf("at endAt by the slot store's clock: report %+v %v, state %s, want closed", rep, err, a.State)
	}
}
