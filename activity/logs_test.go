package activity

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"seckill/internal/loggate"
)

// failingSlots is a slot store whose give-backs and forgets fail or not,
// and that knows every claim as confirmed.
type failingSlots struct {
	SlotStore
	err error
}

func (f *failingSlots) Release(context.Context, Claim) error { return f.err }

func (f *failingSlots) Learn(*Activity) {}

func (f *failingSlots) Forget(context.Context, int64, []Participation) error { return f.err }

func (f *failingSlots) Settle(_ context.Context, _ int64, ps []Participation) ([]Outcome, error) {
	out := make([]Outcome, len(ps))
	for i := range out {
		out[i] = OutcomeConfirmed
	}
	return out, nil
}

// acceptingRepo stores every batch of records.
type acceptingRepo struct{ Repository }

func (acceptingRepo) RecordBatch(context.Context, []Participation) error { return nil }

// TestFailuresThatCostOnlyMemoryAreLogged: a give-back or a forget that
// fails costs the join or the batch nothing, and is logged, once; one that
// works is not.
func TestFailuresThatCostOnlyMemoryAreLogged(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		err  error
		want []string
	}{
		{"Working", nil, nil},
		{"Failing", errors.New("redis down"), []string{"join: release failed", "events: dropping confirmed claims from Redis failed"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			s := NewService(acceptingRepo{}, &failingSlots{err: c.err}, nil, nil, slog.New(slog.NewTextHandler(&logs, nil)))
			s.release(ctx, Claim{ActivityID: 1, Slot: 1})
			s.logGate = loggate.Gate{} // one warning per minute: the next one too
			if err := s.StoreEvents(ctx, []Participation{{ActivityID: 1, Slot: 1, ClaimID: "c"}}); err != nil {
				t.Fatalf("store events: %v", err)
			}
			got := logs.String()
			if len(c.want) == 0 && got != "" {
				t.Fatalf("logged with nothing failing:\n%s", got)
			}
			for _, w := range c.want {
				if strings.Count(got, w) != 1 {
					t.Errorf("logs do not say %q once:\n%s", w, got)
				}
			}
		})
	}
}

// TestNewServiceLogsByDefault: without a logger, the service logs to the
// default one.
func TestNewServiceLogsByDefault(t *testing.T) {
	if s := NewService(nil, nil, nil, nil, nil); s.log != slog.Default() {
		t.Fatal("a service made without a logger has none")
	}
}

// TestDefaultsOfTheSetters: a retention or a rebuild page that is not
// positive is the default; the retention's is the documented 24h.
func TestDefaultsOfTheSetters(t *testing.T) {
	if DefaultRetention != 24*time.Hour {
		t.Fatalf("default retention %v, documented as 24h", DefaultRetention)
	}
	s := NewService(nil, nil, nil, nil, nil)
	for _, c := range []struct{ d, want time.Duration }{{0, DefaultRetention}, {-1, DefaultRetention}, {time.Nanosecond, time.Nanosecond}} {
		s.SetRetention(c.d)
		if s.retention != c.want {
			t.Errorf("SetRetention(%v): %v, want %v", c.d, s.retention, c.want)
		}
	}
	for _, c := range []struct{ n, want int }{{0, DefaultRebuildPage}, {-1, DefaultRebuildPage}, {1, 1}, {7, 7}} {
		s.SetRebuildPage(c.n)
		if s.rebuildPage != c.want {
			t.Errorf("SetRebuildPage(%d): page of %d, want %d", c.n, s.rebuildPage, c.want)
		}
	}
}

// openingRepo holds one activity, approved at first; moving its state back
// after a failed preheat fails or not.
type openingRepo struct {
	Repository
	state    State
	rollback error
}

func (r *openingRepo) Activity(context.Context, int64) (*Activity, error) {
	return &Activity{ID: 1, State: r.state}, nil
}

func (r *openingRepo) SetState(_ context.Context, _ int64, from, to State) error {
	if from == StateOpen && r.rollback != nil { // the move back
		return r.rollback
	}
	r.state = to
	return nil
}

// lockedSlots grants every lock and fails every preheat.
type lockedSlots struct{ SlotStore }

func (lockedSlots) Lock(context.Context, int64, string, time.Duration) (*Lock, error) {
	return &Lock{Release: func() {}}, nil
}

func (lockedSlots) Learn(*Activity) {}

func (lockedSlots) Close(context.Context, int64) error { return nil }

func (lockedSlots) Preheat(context.Context, *Activity) error {
	return Unavailable("redis", errors.New("i/o timeout"))
}

// TestFailedOpenLogsOnlyAStuckRollback: an open whose preheat fails moves
// the state back and says nothing more than its error; when the move back
// fails too, the activity is stuck open in MySQL, and that is logged.
func TestFailedOpenLogsOnlyAStuckRollback(t *testing.T) {
	for _, c := range []struct {
		name     string
		rollback error
		logged   bool
	}{{"RolledBack", nil, false}, {"Stuck", errors.New("mysql down"), true}} {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			s := NewService(&openingRepo{state: StateApproved, rollback: c.rollback}, lockedSlots{}, nil, nil, slog.New(slog.NewTextHandler(&logs, nil)))
			if _, err := s.Transition(context.Background(), 1, ActionOpen); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("open with the preheat failing: %v, want ErrUnavailable", err)
			}
			if got := strings.Contains(logs.String(), "the state could not be moved back"); got != c.logged {
				t.Fatalf("logged %v, want %v:\n%s", got, c.logged, logs.String())
			}
		})
	}
}
