package httpapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
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
	t.Run("MadeUpIDs", func(t *testing.T) {
		// A flood of joins on made-up ids, answered 429 before the id is
		// looked up, counts none of them and crowds no real activity out.
		tally := &activity.Tally{}
		a, _ := newFakeAPI(t, &fakeService{}, httpapi.Config{Tally: tally, PerIP: httpapi.Limit{Rate: 0.001, Burst: 1}})
		joinFrom := func(ip string, id int64, user string) int {
			req := httptest.NewRequest("POST", fmt.Sprintf("/api/v1/activities/%d/join", id), strings.NewReader(`{"userId":"`+user+`"}`))
			req.Header.Set("Content-Type", "application/json")
			req.RemoteAddr = ip + ":1234"
			rec := httptest.NewRecorder()
			a.h.ServeHTTP(rec, req)
			return rec.Code
		}
		a.call(t, "POST", "/api/v1/activities/x/join", `{"userId":"u-1"}`) // spends the burst of 192.0.2.1
		const flood = 16 * 1024
		for i := range flood {
			if code := joinFrom("192.0.2.1", int64(1_000_000+i), "u-1"); code != http.StatusTooManyRequests {
				t.Fatalf("a join on a made-up id: %d, want 429", code)
			}
		}
		for i := range 1000 {
			if code := joinFrom(fmt.Sprintf("10.0.%d.%d", i/256, i%256), 42, fmt.Sprintf("u-%d", i)); code != http.StatusOK {
				t.Fatalf("a join on activity 42: %d, want 200", code)
			}
		}
		if code := joinFrom("192.0.2.1", 42, "u-1"); code != http.StatusTooManyRequests {
			t.Fatalf("a join on activity 42: %d, want 429", code)
		}
		got := tally.Drain()
		if len(got) != 1 || got[0].ActivityID != 42 || got[0].TurnedAway.Busy != 1 {
			t.Fatalf("counted %d activities (the first %+v), want activity 42 alone with one busy join", len(got), got[:min(len(got), 1)])
		}
		var joins, winners int64
		for _, sec := range got[0].Seconds {
			joins, winners = joins+sec.Joins, winners+sec.Winners
		}
		if joins != 1001 || winners != 1000 {
			t.Fatalf("activity 42: %d joins, %d winners counted, want 1001 and 1000", joins, winners)
		}
		if n := tally.Uncounted(); n != flood {
			t.Fatalf("%d joins uncounted, want %d", n, flood)
		}
	})
}
