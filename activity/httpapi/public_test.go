package httpapi_test

import (
	"fmt"
	"net/http"
	"testing"
)

func TestPublicActivity(t *testing.T) {
	t.Parallel()
	a := newAPI(t)

	t.Run("ShowsRemaining", func(t *testing.T) {
		t.Parallel()
		open, _ := a.joined(t, "u-10293")
		got := decode[publicJSON](t, a.call(t, "GET", fmt.Sprintf("/api/v1/activities/%d", open.ID), ""), http.StatusOK)
		if got.ID != open.ID || got.Name != open.Name || got.State != "open" || !got.BeginAt.Equal(open.BeginAt) || !got.EndAt.Equal(open.EndAt) {
			t.Errorf("public activity = %+v, want the fields of %+v", got, open)
		}
		if got.Remaining != open.Stock-1 {
			t.Errorf("remaining %d, want %d", got.Remaining, open.Stock-1)
		}
	})

	t.Run("Visibility", func(t *testing.T) {
		t.Parallel()
		for state, visible := range map[string]bool{"draft": false, "refused": false, "approved": true, "closed": true} {
			act := a.inState(t, state, 4, 1)
			r := a.call(t, "GET", fmt.Sprintf("/api/v1/activities/%d", act.ID), "")
			if !visible {
				wantError(t, r, http.StatusNotFound, "not_found", "")
				continue
			}
			if got := decode[publicJSON](t, r, http.StatusOK); got.State != state || got.Remaining != 4 {
				t.Errorf("%s activity shows %+v, want state %s and 4 remaining", state, got, state)
			}
		}
		wantError(t, a.call(t, "GET", "/api/v1/activities/987654321", ""), http.StatusNotFound, "not_found", "")
	})
}
