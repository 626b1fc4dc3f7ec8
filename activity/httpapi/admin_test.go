package httpapi_test

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func ids(list []activityJSON) []int64 {
	out := []int64{}
	for _, a := range list {
		out = append(out, a.ID)
	}
	return out
}

func TestAdminCreate(t *testing.T) {
	t.Parallel()
	a := newAPI(t)

	t.Run("DefaultsAndEchoes", func(t *testing.T) {
		r := a.admin(t, "POST", "/api/v1/admin/activities",
			`{"name":"Double 11 lucky draw","description":"win a phone","stock":1000,"beginAt":"2026-11-11T00:00:00Z","endAt":"2026-11-12T00:00:00.5Z"}`)
		got := decode[activityJSON](t, r, http.StatusCreated)
		if got.ID < 1 {
			t.Errorf("id %d, want a positive id", got.ID)
		}
		if got.Name != "Double 11 lucky draw" || got.Description != "win a phone" || got.Stock != 1000 {
			t.Errorf("fields not echoed: %s", r.body)
		}
		if got.PerUserLimit != 1 {
			t.Errorf("perUserLimit %d, want the default 1", got.PerUserLimit)
		}
		if got.State != "draft" {
			t.Errorf("state %q, want draft", got.State)
		}
		if want := time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC); !got.BeginAt.Equal(want) {
			t.Errorf("beginAt %v, want %v", got.BeginAt, want)
		}
		if want := time.Date(2026, 11, 12, 0, 0, 0, 5e8, time.UTC); !got.EndAt.Equal(want) {
			t.Errorf("endAt %v, want %v", got.EndAt, want)
		}
		if got.CreatedAt.IsZero() || got.UpdatedAt.IsZero() {
			t.Errorf("createdAt/updatedAt missing: %s", r.body)
		}
		stored := a.get(t, got.ID)
		if stored.Name != got.Name || stored.Stock != got.Stock || !stored.BeginAt.Equal(got.BeginAt) || !stored.EndAt.Equal(got.EndAt) {
			t.Errorf("GET after create = %+v, want %+v", stored, got)
		}
	})

	t.Run("PerUserLimitKept", func(t *testing.T) {
		got := a.create(t, activityBody("limit three", 10, 3))
		if got.PerUserLimit != 3 {
			t.Fatalf("perUserLimit %d, want 3", got.PerUserLimit)
		}
	})

	t.Run("LimitsAreInclusive", func(t *testing.T) {
		name := strings.Repeat("é", 128)
		desc := strings.Repeat("ü", 2000)
		r := a.admin(t, "POST", "/api/v1/admin/activities", fmt.Sprintf(
			`{"name":%q,"description":%q,"stock":10000000,"perUserLimit":1000,"beginAt":"2030-01-01T00:00:00Z","endAt":"2030-01-01T00:00:00.001Z"}`, name, desc))
		got := decode[activityJSON](t, r, http.StatusCreated)
		if got.Name != name || got.Description != desc || got.Stock != 10_000_000 || got.PerUserLimit != 1000 {
			t.Fatalf("limits not stored as sent: name %d runes, description %d runes, stock %d, perUserLimit %d",
				len([]rune(got.Name)), len([]rune(got.Description)), got.Stock, got.PerUserLimit)
		}
		if stored := a.get(t, got.ID); stored.Name != name || stored.Description != desc {
			t.Fatal("multi-byte name or description changed in MySQL")
		}
	})
}

func TestAdminList(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	first := a.create(t, activityBody("first", 1, 1))
	second := a.create(t, activityBody("second", 1, 1))
	third := a.create(t, activityBody("third", 1, 1))
	a.act(t, second.ID, "approve")

	tests := []struct {
		name, query string
		want        []int64
	}{
		{"NewestFirst", "", []int64{third.ID, second.ID, first.ID}},
		{"FirstPage", "?limit=2", []int64{third.ID, second.ID}},
		{"SecondPage", "?limit=2&offset=2", []int64{first.ID}},
		{"PastTheEndIsEmpty", "?offset=3", []int64{}},
		{"StateApproved", "?state=approved", []int64{second.ID}},
		{"StateDraft", "?state=draft", []int64{third.ID, first.ID}},
		{"StateDraftPaged", "?state=draft&limit=1&offset=1", []int64{first.ID}},
		{"StateOpenIsEmpty", "?state=open", []int64{}},
	}
	totals := map[string]int64{"NewestFirst": 3, "FirstPage": 3, "SecondPage": 3, "PastTheEndIsEmpty": 3,
		"StateApproved": 1, "StateDraft": 2, "StateDraftPaged": 2, "StateOpenIsEmpty": 0}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.admin(t, "GET", "/api/v1/admin/activities"+tt.query, "")
			got := decode[listJSON](t, r, http.StatusOK)
			if !slices.Equal(ids(got.Activities), tt.want) {
				t.Fatalf("ids %v, want %v", ids(got.Activities), tt.want)
			}
			if want := totals[tt.name]; got.Total == nil || *got.Total != want {
				t.Fatalf("total %v, want %d: %s", got.Total, want, r.body)
			}
			if !bytes.Contains(r.body, []byte(`"activities":[`)) {
				t.Fatalf("activities is not a JSON array: %s", r.body)
			}
		})
	}
}

// TestAdminListFind: ?q= keeps the names that hold it in any case, its %
// and _ taken literally; ?sort= orders by beginAt either way; total counts
// every match of the filter, past the page.
func TestAdminListFind(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	// Begins in another order than the ids.
	at := func(name string, begin time.Duration) activityJSON {
		b := time.Now().Add(begin)
		return a.create(t, fmt.Sprintf(`{"name":%q,"stock":1,"beginAt":%q,"endAt":%q}`, name, rfc3339(b), rfc3339(b.Add(time.Hour))))
	}
	sale := at("Big SALE 100% off", 3*time.Hour)
	under := at("under_score Sale", time.Hour)
	plain := at("100 percent off", 2*time.Hour)
	other := at("Ünïcode Ärger", 4*time.Hour)
	a.act(t, under.ID, "approve")

	tests := []struct {
		name, query string
		want        []int64
		total       int64
	}{
		{"Everything", "", []int64{other.ID, plain.ID, under.ID, sale.ID}, 4},
		{"QueryAnyCase", "?q=sale", []int64{under.ID, sale.ID}, 2},
		{"QueryPercentLiteral", "?q=100%25", []int64{sale.ID}, 1},
		{"QueryUnderscoreLiteral", "?q=r_s", []int64{under.ID}, 1},
		{"QueryEscapeCharLiteral", "?q=!", []int64{}, 0},
		{"QueryUnicodeAnyCase", "?q=%C3%A4rger", []int64{other.ID}, 1},
		{"QueryNoMatch", "?q=nothing", []int64{}, 0},
		{"QueryAndState", "?q=sale&state=approved", []int64{under.ID}, 1},
		{"QueryAndOtherState", "?q=off&state=approved", []int64{}, 0},
		{"SortCreated", "?q=o&sort=created", []int64{other.ID, plain.ID, under.ID, sale.ID}, 4},
		{"SortBeginAt", "?sort=beginAt", []int64{under.ID, plain.ID, sale.ID, other.ID}, 4},
		{"SortBeginAtDesc", "?q=off&sort=-beginAt", []int64{sale.ID, plain.ID}, 2},
		{"SortBeginAtPaged", "?sort=beginAt&limit=2&offset=1", []int64{plain.ID, sale.ID}, 4},
		{"StateAndSort", "?state=draft&sort=-beginAt", []int64{other.ID, sale.ID, plain.ID}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.admin(t, "GET", "/api/v1/admin/activities"+tt.query, "")
			got := decode[listJSON](t, r, http.StatusOK)
			if !slices.Equal(ids(got.Activities), tt.want) {
				t.Fatalf("ids %v, want %v", ids(got.Activities), tt.want)
			}
			if got.Total == nil || *got.Total != tt.total {
				t.Fatalf("total %v, want %d: %s", got.Total, tt.total, r.body)
			}
		})
	}
}

func TestAdminPatch(t *testing.T) {
	t.Parallel()
	a := newAPI(t)

	t.Run("DraftIsEdited", func(t *testing.T) {
		created := a.create(t, `{"name":"before","description":"kept","stock":5,"perUserLimit":2,"beginAt":"2030-01-01T00:00:00Z","endAt":"2030-01-02T00:00:00Z"}`)
		r := a.admin(t, "PATCH", fmt.Sprintf("/api/v1/admin/activities/%d", created.ID), `{"name":"after","stock":7}`)
		got := decode[activityJSON](t, r, http.StatusOK)
		if got.Name != "after" || got.Stock != 7 {
			t.Errorf("patched fields not applied: %s", r.body)
		}
		if got.Description != "kept" || got.PerUserLimit != 2 || !got.BeginAt.Equal(created.BeginAt) || got.State != "draft" {
			t.Errorf("fields absent from the patch changed: %s", r.body)
		}
		stored := a.get(t, created.ID)
		if stored.Name != "after" || stored.Stock != 7 || stored.Stats.Surplus != 7 {
			t.Errorf("GET after patch = %+v (stats %+v), want name after, stock and surplus 7", stored, stored.Stats)
		}
	})

	for _, state := range []string{"approved", "refused", "open", "closed"} {
		t.Run(title(state)+"IsInvalidState", func(t *testing.T) {
			act := a.inState(t, state, 5, 1)
			r := a.admin(t, "PATCH", fmt.Sprintf("/api/v1/admin/activities/%d", act.ID), `{"name":"too late"}`)
			wantError(t, r, http.StatusConflict, "invalid_state", "")
			if got := a.get(t, act.ID); got.Name != act.Name || got.State != state {
				t.Fatalf("refused patch changed the activity: %+v", got)
			}
		})
	}

	t.Run("UnknownIsNotFound", func(t *testing.T) {
		wantError(t, a.admin(t, "PATCH", "/api/v1/admin/activities/987654321", `{"name":"x"}`), http.StatusNotFound, "not_found", "")
	})
}

func TestAdminTransitions(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	allowed := map[string]string{
		"draft/approve": "approved",
		"draft/refuse":  "refused",
		"approved/open": "open",
		"open/close":    "closed",
	}
	for _, from := range []string{"draft", "approved", "refused", "open", "closed"} {
		for _, action := range []string{"approve", "refuse", "open", "close"} {
			to, ok := allowed[from+"/"+action]
			name := title(action) + "From" + title(from)
			if ok {
				name += "Gives" + title(to)
			} else {
				name += "IsInvalidState"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				act := a.inState(t, from, 3, 1)
				r := a.admin(t, "POST", fmt.Sprintf("/api/v1/admin/activities/%d/%s", act.ID, action), "")
				if !ok {
					wantError(t, r, http.StatusConflict, "invalid_state", "")
					if got := a.get(t, act.ID); got.State != from {
						t.Fatalf("refused %s moved the activity to %s", action, got.State)
					}
					return
				}
				got := decode[activityJSON](t, r, http.StatusOK)
				if got.State != to || got.ID != act.ID {
					t.Fatalf("%s answered %s, want activity %d in state %s", action, r.body, act.ID, to)
				}
				if stored := a.get(t, act.ID); stored.State != to {
					t.Fatalf("stored state %s, want %s", stored.State, to)
				}
			})
		}
	}

	t.Run("UnknownIsNotFound", func(t *testing.T) {
		t.Parallel()
		for _, path := range []string{"", "/approve", "/refuse", "/open", "/close"} {
			method := "POST"
			if path == "" {
				method = "GET"
			}
			r := a.admin(t, method, "/api/v1/admin/activities/987654321"+path, "")
			wantError(t, r, http.StatusNotFound, "not_found", "")
		}
	})
}
