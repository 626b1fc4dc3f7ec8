package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
)

func TestStats(t *testing.T) {
	t.Parallel()
	a := newAPI(t)

	t.Run("GetHasStats", func(t *testing.T) {
		t.Parallel()
		created := a.create(t, activityBody("with stats", 12, 1))
		r := a.admin(t, "GET", fmt.Sprintf("/api/v1/admin/activities/%d", created.ID), "")
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(decode[json.RawMessage](t, r, http.StatusOK), &raw); err != nil {
			t.Fatal(err)
		}
		var stats map[string]any
		if err := json.Unmarshal(raw["stats"], &stats); err != nil || stats == nil {
			t.Fatalf("no stats object in %s", r.body)
		}
		for _, k := range []string{"claimed", "inFlight", "issued", "recorded", "surplus", "reconciledAt"} {
			if _, ok := stats[k]; !ok {
				t.Errorf("stats has no %q: %s", k, r.body)
			}
		}
		if got := decode[activityJSON](t, r, http.StatusOK).Stats; got.Surplus != 12 || got.Claimed != 0 {
			t.Errorf("stats of a new activity = %+v, want surplus 12 and nothing claimed", got)
		}
	})

	t.Run("CountTheJoin", func(t *testing.T) {
		t.Parallel()
		open, _ := a.joined(t, "u-10293")
		st := a.get(t, open.ID).Stats
		// recorded counts settled records, which the reconcile job (not
		// running here) settles: 0 or 1, never more.
		if st == nil || st.Claimed != 1 || st.Issued != 1 || st.InFlight != 0 || st.Recorded > 1 {
			t.Fatalf("stats %+v, want 1 claimed and issued, none in flight, at most 1 recorded", st)
		}
	})
}
