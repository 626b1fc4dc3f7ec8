package httpapi_test

import (
	"fmt"
	"net/http"
	"testing"

	"seckill/activity"
	"seckill/activity/httpapi"
)

// TestJoinsTallied: each join is counted in the tally by its activity and
// answer — a token, sold out, at the limit, busy (shed, slots in flight,
// rate limited) — and nothing else is: not found, not open, bad input,
// a dependency down.
func TestJoinsTallied(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		path    string
		counted bool
		want    activity.TurnedAway
		winners int64
	}{
		{"Won", nil, "/api/v1/activities/7/join", true, activity.TurnedAway{}, 1},
		{"SoldOut", fmt.Errorf("claim: %w", activity.ErrSoldOut), "/api/v1/activities/7/join", true, activity.TurnedAway{SoldOut: 1}, 0},
		{"LimitReached", &activity.LimitError{}, "/api/v1/activities/7/join", true, activity.TurnedAway{LimitReached: 1}, 0},
		{"SlotsInFlight", activity.ErrSlotsInFlight, "/api/v1/activities/7/join", true, activity.TurnedAway{Busy: 1}, 0},
		{"NotFound", activity.ErrNotFound, "/api/v1/activities/7/join", false, activity.TurnedAway{}, 0},
		{"NotOpen", activity.ErrNotOpen, "/api/v1/activities/7/join", false, activity.TurnedAway{}, 0},
		{"Unavailable", activity.Unavailable("kafka", fmt.Errorf("down")), "/api/v1/activities/7/join", false, activity.TurnedAway{}, 0},
		{"BadID", nil, "/api/v1/activities/x/join", false, activity.TurnedAway{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tally := &activity.Tally{}
			a, _ := newFakeAPI(t, &fakeService{joinErr: tt.err}, httpapi.Config{Tally: tally})
			a.call(t, "POST", tt.path, `{"userId":"u-1"}`)
			got := tally.Drain()
			if !tt.counted {
				if len(got) != 0 {
					t.Fatalf("counted %+v, want nothing", got)
				}
				return
			}
			if len(got) != 1 || got[0].ActivityID != 7 || got[0].TurnedAway != tt.want || len(got[0].Seconds) != 1 ||
				got[0].Seconds[0].Joins != 1 || got[0].Seconds[0].Winners != tt.winners {
				t.Fatalf("counted %+v, want one join of activity 7 turned away %+v, %d winners", got, tt.want, tt.winners)
			}
		})
	}
	t.Run("RateLimited", func(t *testing.T) {
		tally := &activity.Tally{}
		a, _ := newFakeAPI(t, &fakeService{}, httpapi.Config{Tally: tally, PerIP: httpapi.Limit{Rate: 0.001, Burst: 1}})
		a.join(t, 7, "u-1")
		if r := a.join(t, 7, "u-2"); r.status != http.StatusTooManyRequests {
			t.Fatalf("second join: %s, want 429", r)
		}
		got := tally.Drain()
		if len(got) != 1 || got[0].TurnedAway.Busy != 1 || got[0].Seconds[0].Joins != 2 || got[0].Seconds[0].Winners != 1 {
			t.Fatalf("counted %+v, want a winner and a busy join", got)
		}
	})
}
