package httpapi_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"seckill/activity"
	"seckill/activity/httpapi"
)

// joinOutcomes are the outcome labels of seckill_joins_total, as the README
// lists them and its alerts query them.
var joinOutcomes = []string{"ok", "sold_out", "slots_in_flight", "limit_reached", "not_open", "not_found",
	"invalid", "unauthorized", "too_large", "rate_limited", "shed", "unavailable", "error"}

// joinCounts returns the seckill_joins_total series a Server exports, by
// outcome.
func joinCounts(t *testing.T, a *api) map[string]float64 {
	t.Helper()
	r := a.call(t, "GET", "/metrics", "")
	if r.status != http.StatusOK {
		t.Fatalf("metrics: %s", r)
	}
	counts := map[string]float64{}
	for _, line := range strings.Split(string(r.body), "\n") {
		rest, ok := strings.CutPrefix(line, `seckill_joins_total{outcome="`)
		if !ok {
			continue
		}
		outcome, value, _ := strings.Cut(rest, `"} `)
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		counts[outcome] = v
	}
	return counts
}

// wantJoinCounted checks that the joins metric counts one join, under
// outcome.
func wantJoinCounted(t *testing.T, a *api, outcome string) {
	t.Helper()
	counts := joinCounts(t, a)
	total := 0.0
	for _, v := range counts {
		total += v
	}
	if counts[outcome] != 1 || total != 1 {
		t.Errorf("joins counted %v, want one, under %q", counts, outcome)
	}
}

// TestJoinOutcomes: a new Server exports every outcome of the joins metric
// at zero, and no other.
func TestJoinOutcomes(t *testing.T) {
	a, _ := newFakeAPI(t, &fakeService{}, httpapi.Config{})
	counts := joinCounts(t, a)
	if got := slices.Sorted(maps.Keys(counts)); !slices.Equal(got, slices.Sorted(slices.Values(joinOutcomes))) {
		t.Fatalf("outcomes %q, want %q", got, slices.Sorted(slices.Values(joinOutcomes)))
	}
	for outcome, v := range counts {
		if v != 0 {
			t.Errorf("outcome %q at %v before any join", outcome, v)
		}
	}
}

// TestErrorAnswers: each error of the domain is answered with the status and
// code of the error table, counted under the table's outcome, with
// Retry-After on a 503, and logged only when it is a 5xx other than
// slots_in_flight.
func TestErrorAnswers(t *testing.T) {
	held := []activity.Participation{{Token: "held-1", ActivityID: 7, Slot: 3, UserID: "u-1"}}
	tests := []struct {
		name    string
		err     error
		status  int
		code    string
		field   string // named in the message, when not empty
		outcome string
		logged  bool
	}{
		{"SoldOut", activity.ErrSoldOut, http.StatusConflict, "sold_out", "", "sold_out", false},
		{"SoldOutWrapped", fmt.Errorf("claim: %w", activity.ErrSoldOut), http.StatusConflict, "sold_out", "", "sold_out", false},
		{"LimitReached", &activity.LimitError{Held: held}, http.StatusConflict, "limit_reached", "", "limit_reached", false},
		{"NotOpen", activity.ErrNotOpen, http.StatusConflict, "not_open", "", "not_open", false},
		{"NotFound", activity.ErrNotFound, http.StatusNotFound, "not_found", "", "not_found", false},
		{"Invalid", &activity.ValidationError{Field: "userId", Message: "must be 1 to 64 letters"}, http.StatusBadRequest, "invalid_request", "userId", "invalid", false},
		{"InvalidState", activity.ErrInvalidState, http.StatusConflict, "invalid_state", "", "error", false},
		{"SlotsInFlight", activity.ErrSlotsInFlight, http.StatusServiceUnavailable, "slots_in_flight", "", "slots_in_flight", false},
		{"Unavailable", activity.Unavailable("redis", errors.New("connection refused")), http.StatusServiceUnavailable, "unavailable", "", "unavailable", true},
		{"Internal", errors.New("boom"), http.StatusInternalServerError, "internal", "", "error", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, log := newFakeAPI(t, &fakeService{joinErr: tt.err}, httpapi.Config{})
			r := a.join(t, 7, "u-1")
			wantError(t, r, tt.status, tt.code, tt.field)
			wantJoinCounted(t, a, tt.outcome)
			wantRetry := ""
			if tt.status == http.StatusServiceUnavailable {
				wantRetry = "1"
			}
			if got := r.header.Get("Retry-After"); got != wantRetry {
				t.Errorf("Retry-After %q, want %q", got, wantRetry)
			}
			if logged := strings.Contains(log.String(), "request failed"); logged != tt.logged {
				t.Errorf("logged %v, want %v: %s", logged, tt.logged, log)
			}
			if strings.Contains(string(r.body), "boom") || strings.Contains(string(r.body), "connection refused") {
				t.Errorf("the answer shows the cause: %s", r.body)
			}
		})
	}

	t.Run("LimitReachedListsHeldTokens", func(t *testing.T) {
		a, _ := newFakeAPI(t, &fakeService{joinErr: &activity.LimitError{Held: held}}, httpapi.Config{})
		var body struct{ Error struct{ Tokens []tokenJSON } }
		if err := json.Unmarshal(a.join(t, 7, "u-1").body, &body); err != nil {
			t.Fatal(err)
		}
		if got := body.Error.Tokens; len(got) != 1 || got[0].Token != "held-1" || got[0].ActivityID != 7 || got[0].Slot != 3 || got[0].UserID != "u-1" {
			t.Fatalf("tokens %+v, want the one held", got)
		}
	})

	t.Run("UnavailableCountsTheDependency", func(t *testing.T) {
		a, _ := newFakeAPI(t, &fakeService{joinErr: activity.Unavailable("kafka", errors.New("timeout"))}, httpapi.Config{})
		a.join(t, 7, "u-1")
		if r := a.call(t, "GET", "/metrics", ""); !strings.Contains(string(r.body), `seckill_dependency_errors_total{dependency="kafka"} 1`) {
			t.Fatalf("metrics do not count the kafka failure:\n%s", r.body)
		}
	})

	t.Run("UnavailableNamesTheDependency", func(t *testing.T) {
		for _, tt := range []struct {
			err       error
			dep, name string
		}{
			{activity.Unavailable("redis", errors.New("refused")), "redis", "Redis"},
			{activity.Unavailable("mysql", errors.New("refused")), "mysql", "MySQL"},
			{fmt.Errorf("%w: record participation: %w", activity.ErrUnavailable, activity.Unavailable("kafka", errors.New("timeout"))), "kafka", "Kafka"},
		} {
			a, _ := newFakeAPI(t, &fakeService{joinErr: tt.err}, httpapi.Config{})
			r := a.join(t, 7, "u-1")
			var body struct {
				Error struct{ Code, Dependency, Message string }
			}
			if err := json.Unmarshal(r.body, &body); err != nil {
				t.Fatal(err)
			}
			want := tt.name + " is unavailable; nothing was taken; safe to retry"
			if r.status != http.StatusServiceUnavailable || body.Error.Code != "unavailable" || body.Error.Dependency != tt.dep || body.Error.Message != want {
				t.Errorf("%v answered %d %s, want 503 unavailable naming %s", tt.err, r.status, r.body, tt.dep)
			}
			if r.header.Get("Retry-After") != "1" {
				t.Errorf("%v: no Retry-After", tt.err)
			}
		}
		// A 503 of no one dependency keeps its answer.
		a, _ := newFakeAPI(t, &fakeService{joinErr: fmt.Errorf("%w: being rebuilt", activity.ErrUnavailable)}, httpapi.Config{})
		if r := a.join(t, 7, "u-1"); strings.Contains(string(r.body), `"dependency":`) {
			t.Errorf("a rebuild's 503 names a dependency: %s", r.body)
		}
	})

	t.Run("RateLimited", func(t *testing.T) {
		fake := &fakeService{}
		a, _ := newFakeAPI(t, fake, httpapi.Config{PerIP: httpapi.Limit{Rate: 0.001, Burst: 1}})
		decode[tokenJSON](t, a.join(t, 7, "u-1"), http.StatusOK)
		wantError(t, a.join(t, 7, "u-2"), http.StatusTooManyRequests, "rate_limited", "")
		if counts := joinCounts(t, a); counts["ok"] != 1 || counts["rate_limited"] != 1 {
			t.Errorf("joins counted %v, want one ok and one rate_limited", counts)
		}
		if n := fake.calls(); n != 1 {
			t.Errorf("the service was asked %d joins, want 1: a limited join goes no further", n)
		}
	})

	t.Run("TooLarge", func(t *testing.T) {
		fake := &fakeService{}
		a, _ := newFakeAPI(t, fake, httpapi.Config{})
		r := a.call(t, "POST", "/api/v1/activities/7/join", `{"userId":"`+strings.Repeat("u", httpapi.MaxBodyBytes)+`"}`)
		wantError(t, r, http.StatusRequestEntityTooLarge, "too_large", "")
		wantJoinCounted(t, a, "too_large")
		if n := fake.calls(); n != 0 {
			t.Errorf("the service was asked %d joins, want none", n)
		}
	})
}
