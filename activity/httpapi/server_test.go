package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"seckill/activity"
	"seckill/activity/httpapi"
	"seckill/internal/testenv"
)

const adminToken = "admin-test-token-4f1c9a"

// api is a Server over a test environment of its own, driven in process.
type api struct {
	env *testenv.Env
	h   http.Handler
}

func newAPI(t *testing.T) *api {
	t.Helper()
	env := testenv.New(t, testenv.Options{})
	return &api{env: env, h: httpapi.New(env.Svc, httpapi.Config{AdminToken: adminToken, Log: testenv.Logger(t)})}
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// call sends one request; header holds name, value pairs.
func (a *api) call(t *testing.T, method, path, body string, header ...string) reply {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req)
	return reply{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// admin sends one request with the admin bearer token.
func (a *api) admin(t *testing.T, method, path, body string) reply {
	t.Helper()
	return a.call(t, method, path, body, "Authorization", "Bearer "+adminToken)
}

// decode checks the status of r and decodes its body into a T.
func decode[T any](t *testing.T, r reply, status int) T {
	t.Helper()
	var v T
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	return v
}

// wantError checks that r is the error JSON of the API with status and code,
// and that its message names field when field is not empty.
func wantError(t *testing.T, r reply, status int, code, field string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (%s); body %s", r.status, status, code, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &outer); err != nil {
		t.Fatalf("error body %s is not a JSON object: %v", r.body, err)
	}
	if len(outer) != 1 || outer["error"] == nil {
		t.Fatalf(`error body %s, want exactly {"error": {...}}`, r.body)
	}
	var detail map[string]any
	if err := json.Unmarshal(outer["error"], &detail); err != nil {
		t.Fatalf("error body %s: %v", r.body, err)
	}
	gotCode, ok1 := detail["code"].(string)
	msg, ok2 := detail["message"].(string)
	_, hasTokens := detail["tokens"]
	want := 2
	if code == "limit_reached" && hasTokens {
		want = 3 // limit_reached lists the tokens the user holds
	}
	if len(detail) != want || !ok1 || !ok2 {
		t.Fatalf(`error body %s, want exactly {"code": string, "message": string}`, r.body)
	}
	if gotCode != code {
		t.Errorf("code %q, want %q; body %s", gotCode, code, r.body)
	}
	if strings.TrimSpace(msg) == "" {
		t.Errorf("empty message; body %s", r.body)
	}
	if field != "" && !strings.Contains(msg, field) {
		t.Errorf("message %q does not name the field %q", msg, field)
	}
}

type statsJSON struct {
	Claimed      int64      `json:"claimed"`
	InFlight     int64      `json:"inFlight"`
	Issued       int64      `json:"issued"`
	Recorded     int64      `json:"recorded"`
	Surplus      int64      `json:"surplus"`
	ReconciledAt *time.Time `json:"reconciledAt"`
}

type activityJSON struct {
	ID           int64      `json:"id"`
	Name         string     `json:"name"`
	Description  string     `json:"description"`
	Stock        int64      `json:"stock"`
	PerUserLimit int64      `json:"perUserLimit"`
	BeginAt      time.Time  `json:"beginAt"`
	EndAt        time.Time  `json:"endAt"`
	State        string     `json:"state"`
	CreatedAt    time.Time  `json:"createdAt"`
	UpdatedAt    time.Time  `json:"updatedAt"`
	Stats        *statsJSON `json:"stats"`
}

type publicJSON struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	BeginAt     time.Time `json:"beginAt"`
	EndAt       time.Time `json:"endAt"`
	State       string    `json:"state"`
	Remaining   int64     `json:"remaining"`
}

type tokenJSON struct {
	Token      string    `json:"token"`
	ActivityID int64     `json:"activityId"`
	Slot       int64     `json:"slot"`
	UserID     string    `json:"userId"`
	IssuedAt   time.Time `json:"issuedAt"`
}

type listJSON struct {
	Activities []activityJSON `json:"activities"`
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// activityBody is a valid create body whose window holds now.
func activityBody(name string, stock, perUser int64) string {
	now := time.Now()
	return fmt.Sprintf(`{"name":%q,"stock":%d,"perUserLimit":%d,"beginAt":%q,"endAt":%q}`,
		name, stock, perUser, rfc3339(now.Add(-time.Minute)), rfc3339(now.Add(time.Hour)))
}

func (a *api) create(t *testing.T, body string) activityJSON {
	t.Helper()
	return decode[activityJSON](t, a.admin(t, "POST", "/api/v1/admin/activities", body), http.StatusCreated)
}

func (a *api) get(t *testing.T, id int64) activityJSON {
	t.Helper()
	return decode[activityJSON](t, a.admin(t, "GET", fmt.Sprintf("/api/v1/admin/activities/%d", id), ""), http.StatusOK)
}

func (a *api) act(t *testing.T, id int64, action string) activityJSON {
	t.Helper()
	return decode[activityJSON](t, a.admin(t, "POST", fmt.Sprintf("/api/v1/admin/activities/%d/%s", id, action), ""), http.StatusOK)
}

// pathTo lists the admin actions that lead from draft to each state.
var pathTo = map[string][]string{
	"draft":    nil,
	"approved": {"approve"},
	"refused":  {"refuse"},
	"open":     {"approve", "open"},
	"closed":   {"approve", "open", "close"},
}

// inState creates an activity whose window holds now and moves it to state.
func (a *api) inState(t *testing.T, state string, stock, perUser int64) activityJSON {
	t.Helper()
	act := a.create(t, activityBody("activity "+state, stock, perUser))
	for _, action := range pathTo[state] {
		act = a.act(t, act.ID, action)
	}
	if act.State != state {
		t.Fatalf("activity %d is %s, want %s", act.ID, act.State, state)
	}
	return act
}

func (a *api) join(t *testing.T, id int64, user string) reply {
	t.Helper()
	return a.call(t, "POST", fmt.Sprintf("/api/v1/activities/%d/join", id), fmt.Sprintf(`{"userId":%q}`, user))
}

func title(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

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

	t.Run("GetHasStats", func(t *testing.T) {
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
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.admin(t, "GET", "/api/v1/admin/activities"+tt.query, "")
			got := decode[listJSON](t, r, http.StatusOK)
			if !slices.Equal(ids(got.Activities), tt.want) {
				t.Fatalf("ids %v, want %v", ids(got.Activities), tt.want)
			}
			if !bytes.Contains(r.body, []byte(`"activities":[`)) {
				t.Fatalf("activities is not a JSON array: %s", r.body)
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

func TestJoin(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	open := a.inState(t, "open", 3, 1)

	before := time.Now().UTC().Truncate(time.Millisecond)
	r := a.join(t, open.ID, "u-10293")
	after := time.Now().UTC()
	joined := decode[tokenJSON](t, r, http.StatusOK)

	t.Run("JoinGivesToken", func(t *testing.T) {
		var raw map[string]any
		if err := json.Unmarshal(r.body, &raw); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"token", "activityId", "slot", "userId", "issuedAt"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("join answer has no %q: %s", k, r.body)
			}
		}
		if joined.Token == "" || joined.ActivityID != open.ID || joined.UserID != "u-10293" {
			t.Errorf("join answered %s, want a token of activity %d for u-10293", r.body, open.ID)
		}
		if joined.Slot < 1 || joined.Slot > open.Stock {
			t.Errorf("slot %d outside [1, %d]", joined.Slot, open.Stock)
		}
		if joined.IssuedAt.Before(before) || joined.IssuedAt.After(after) {
			t.Errorf("issuedAt %v not within the request [%v, %v]", joined.IssuedAt, before, after)
		}
	})

	t.Run("TokenLookupGivesSameFields", func(t *testing.T) {
		got := decode[tokenJSON](t, a.call(t, "GET", "/api/v1/tokens/"+joined.Token, ""), http.StatusOK)
		if got.Token != joined.Token || got.ActivityID != joined.ActivityID || got.Slot != joined.Slot ||
			got.UserID != joined.UserID || !got.IssuedAt.Equal(joined.IssuedAt) {
			t.Fatalf("token lookup = %+v, want %+v", got, joined)
		}
	})

	t.Run("ForgedTokenIsNotFound", func(t *testing.T) {
		if r := a.call(t, "GET", "/api/v1/tokens/"+joined.Token, ""); r.status != http.StatusOK {
			t.Fatalf("the genuine token is not found (%s), so these cases would prove nothing", r)
		}
		raw, err := base64.RawURLEncoding.DecodeString(joined.Token)
		if err != nil || len(raw) != 40 {
			t.Fatalf("token %q is not 40 base64url bytes: %v", joined.Token, err)
		}
		var nonce [12]byte
		copy(nonce[:], raw[12:24])
		other, err := activity.NewSigner(bytes.Repeat([]byte("x"), 32))
		if err != nil {
			t.Fatal(err)
		}
		random := make([]byte, 40)
		_, _ = rand.Read(random)

		forged := map[string]string{
			"Truncated":   joined.Token[:len(joined.Token)-1],
			"Extended":    joined.Token + "A",
			"Random":      base64.RawURLEncoding.EncodeToString(random),
			"ShortString": "not-a-token",
			"OtherSecret": other.Sign(joined.ActivityID, joined.Slot, nonce),
		}
		for i := range joined.Token {
			b := []byte(joined.Token)
			if b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			forged[fmt.Sprintf("AlteredAt%02d", i)] = string(b)
		}
		names := make([]string, 0, len(forged))
		for name := range forged {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			t.Run(name, func(t *testing.T) {
				wantError(t, a.call(t, "GET", "/api/v1/tokens/"+forged[name], ""), http.StatusNotFound, "not_found", "")
			})
		}
	})

	t.Run("PublicActivityShowsRemaining", func(t *testing.T) {
		got := decode[publicJSON](t, a.call(t, "GET", fmt.Sprintf("/api/v1/activities/%d", open.ID), ""), http.StatusOK)
		if got.ID != open.ID || got.Name != open.Name || got.State != "open" || !got.BeginAt.Equal(open.BeginAt) || !got.EndAt.Equal(open.EndAt) {
			t.Errorf("public activity = %+v, want the fields of %+v", got, open)
		}
		if got.Remaining != open.Stock-1 {
			t.Errorf("remaining %d, want %d", got.Remaining, open.Stock-1)
		}
	})

	t.Run("StatsCountTheJoin", func(t *testing.T) {
		st := a.get(t, open.ID).Stats
		// recorded counts settled records, which the reconcile job (not
		// running here) settles: 0 or 1, never more.
		if st == nil || st.Claimed != 1 || st.Issued != 1 || st.InFlight != 0 || st.Recorded > 1 {
			t.Fatalf("stats %+v, want 1 claimed and issued, none in flight, at most 1 recorded", st)
		}
	})

	t.Run("TokenIsRecordedBeforeItIsAnswered", func(t *testing.T) {
		var rows int
		if err := a.env.DB.Get(&rows, "SELECT COUNT(*) FROM participations WHERE token = ? AND activity_id = ? AND slot = ?",
			joined.Token, joined.ActivityID, joined.Slot); err != nil || rows != 1 {
			t.Fatalf("%d participation rows for the token (%v), want 1", rows, err)
		}
	})

	t.Run("PublicVisibility", func(t *testing.T) {
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

	t.Run("NotOpen", func(t *testing.T) {
		for _, state := range []string{"draft", "approved", "refused", "closed"} {
			act := a.inState(t, state, 4, 1)
			wantError(t, a.join(t, act.ID, "u-1"), http.StatusConflict, "not_open", "")
		}
	})

	t.Run("ClosedStopsJoins", func(t *testing.T) {
		act := a.inState(t, "open", 4, 1)
		decode[tokenJSON](t, a.join(t, act.ID, "early"), http.StatusOK)
		a.act(t, act.ID, "close")
		wantError(t, a.join(t, act.ID, "late"), http.StatusConflict, "not_open", "")
		if st := a.get(t, act.ID).Stats; st.Claimed != 1 {
			t.Fatalf("claimed %d after close, want 1", st.Claimed)
		}
	})

	t.Run("OutsideWindowIsNotOpen", func(t *testing.T) {
		for name, window := range map[string][2]time.Time{
			"NotBegun": {time.Now().Add(time.Hour), time.Now().Add(2 * time.Hour)},
			"Ended":    {time.Now().Add(-2 * time.Hour), time.Now().Add(-time.Hour)},
		} {
			act := a.create(t, fmt.Sprintf(`{"name":%q,"stock":4,"beginAt":%q,"endAt":%q}`, name, rfc3339(window[0]), rfc3339(window[1])))
			a.act(t, act.ID, "approve")
			a.act(t, act.ID, "open")
			wantError(t, a.join(t, act.ID, "u-1"), http.StatusConflict, "not_open", "")
		}
	})

	t.Run("UnknownActivityIsNotFound", func(t *testing.T) {
		wantError(t, a.join(t, 987654321, "u-1"), http.StatusNotFound, "not_found", "")
	})

	t.Run("SoldOut", func(t *testing.T) {
		act := a.inState(t, "open", 1, 1)
		decode[tokenJSON](t, a.join(t, act.ID, "first"), http.StatusOK)
		wantError(t, a.join(t, act.ID, "second"), http.StatusConflict, "sold_out", "")
		if got := decode[publicJSON](t, a.call(t, "GET", fmt.Sprintf("/api/v1/activities/%d", act.ID), ""), http.StatusOK); got.Remaining != 0 {
			t.Errorf("remaining %d, want 0", got.Remaining)
		}
		if st := a.get(t, act.ID).Stats; st.Claimed != 1 || st.Issued != 1 {
			t.Errorf("stats %+v, want 1 claimed and issued", st)
		}
	})

	t.Run("LimitReached", func(t *testing.T) {
		act := a.inState(t, "open", 10, 2)
		first := decode[tokenJSON](t, a.join(t, act.ID, "greedy"), http.StatusOK)
		second := decode[tokenJSON](t, a.join(t, act.ID, "greedy"), http.StatusOK)
		r := a.join(t, act.ID, "greedy")
		wantError(t, r, http.StatusConflict, "limit_reached", "")
		var held struct{ Error struct{ Tokens []tokenJSON } }
		if err := json.Unmarshal(r.body, &held); err != nil {
			t.Fatal(err)
		}
		if len(held.Error.Tokens) != 2 || held.Error.Tokens[0].Token != first.Token || held.Error.Tokens[1].Token != second.Token {
			t.Errorf("limit_reached lists %+v, want the two tokens %s and %s", held.Error.Tokens, first.Token, second.Token)
		}
		decode[tokenJSON](t, a.join(t, act.ID, "modest"), http.StatusOK)
		if st := a.get(t, act.ID).Stats; st.Claimed != 3 {
			t.Errorf("claimed %d, want 3", st.Claimed)
		}
	})

	t.Run("BodyAtTheLimitIsAccepted", func(t *testing.T) {
		act := a.inState(t, "open", 10, 1)
		body := `{"userId":"padded"}`
		body += strings.Repeat(" ", httpapi.MaxBodyBytes-len(body))
		r := a.call(t, "POST", fmt.Sprintf("/api/v1/activities/%d/join", act.ID), body)
		decode[tokenJSON](t, r, http.StatusOK)
		wantError(t, a.call(t, "POST", fmt.Sprintf("/api/v1/activities/%d/join", act.ID), body+" "), http.StatusRequestEntityTooLarge, "too_large", "")
	})
}

// snapshot is everything a bad request must leave as it was.
type snapshot struct {
	activities, participations int
	claimed, inFlight, issued  int64
	draft, open                string
}

func (a *api) snapshot(t *testing.T, draftID, openID int64) snapshot {
	t.Helper()
	var s snapshot
	if err := a.env.DB.Get(&s.activities, "SELECT COUNT(*) FROM activities"); err != nil {
		t.Fatal(err)
	}
	if err := a.env.DB.Get(&s.participations, "SELECT COUNT(*) FROM participations"); err != nil {
		t.Fatal(err)
	}
	c, ok, err := a.env.Store.Counters(context.Background(), openID)
	if err != nil || !ok {
		t.Fatalf("counters of the open activity: %v, present %v", err, ok)
	}
	s.claimed, s.inFlight, s.issued = c.Claimed, c.InFlight, c.Issued
	for _, p := range []struct {
		id  int64
		dst *string
	}{{draftID, &s.draft}, {openID, &s.open}} {
		r := a.admin(t, "GET", fmt.Sprintf("/api/v1/admin/activities/%d", p.id), "")
		if r.status != http.StatusOK {
			t.Fatalf("GET activity %d: %s", p.id, r)
		}
		*p.dst = string(r.body)
	}
	return s
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	draft := a.create(t, `{"name":"draft","stock":5,"beginAt":"2030-01-01T00:00:00Z","endAt":"2030-01-02T00:00:00Z"}`)
	open := a.inState(t, "open", 10, 1)

	const (
		create = "/api/v1/admin/activities"
		begin  = `"beginAt":"2030-01-01T00:00:00Z"`
		end    = `"endAt":"2030-01-02T00:00:00Z"`
	)
	valid := `{"name":"ok","stock":5,` + begin + `,` + end + `}`
	patch := fmt.Sprintf("/api/v1/admin/activities/%d", draft.ID)
	join := fmt.Sprintf("/api/v1/activities/%d/join", open.ID)
	bearer := "Bearer " + adminToken

	type tc struct {
		name, method, path, body string
		auth                     string // the Authorization header; "-" for none
		status                   int
		code, field              string
	}
	bad := func(name, method, path, body, field string) tc {
		return tc{name, method, path, body, bearer, http.StatusBadRequest, "invalid_request", field}
	}
	tests := []tc{
		bad("CreateMalformedJSON", "POST", create, `{"name":"x",`, "body"),
		bad("CreateEmptyBody", "POST", create, ``, "body"),
		bad("CreateArray", "POST", create, `[`+valid+`]`, "body"),
		bad("CreateString", "POST", create, `"x"`, "body"),
		bad("CreateNumber", "POST", create, `42`, "body"),
		bad("CreateNull", "POST", create, `null`, "name"),
		bad("CreateUnknownField", "POST", create, `{"name":"ok","stock":5,`+begin+`,`+end+`,"color":"red"}`, "color"),
		bad("CreateStockString", "POST", create, `{"name":"ok","stock":"5",`+begin+`,`+end+`}`, "stock"),
		bad("CreateStockFraction", "POST", create, `{"name":"ok","stock":1.5,`+begin+`,`+end+`}`, "stock"),
		bad("CreateStockHuge", "POST", create, `{"name":"ok","stock":99999999999999999999,`+begin+`,`+end+`}`, "stock"),
		bad("CreateStockZero", "POST", create, `{"name":"ok","stock":0,`+begin+`,`+end+`}`, "stock"),
		bad("CreateStockNegative", "POST", create, `{"name":"ok","stock":-1,`+begin+`,`+end+`}`, "stock"),
		bad("CreateStockOverMax", "POST", create, `{"name":"ok","stock":10000001,`+begin+`,`+end+`}`, "stock"),
		bad("CreateStockMissing", "POST", create, `{"name":"ok",`+begin+`,`+end+`}`, "stock"),
		bad("CreatePerUserLimitZero", "POST", create, `{"name":"ok","stock":5,"perUserLimit":0,`+begin+`,`+end+`}`, "perUserLimit"),
		bad("CreatePerUserLimitString", "POST", create, `{"name":"ok","stock":5,"perUserLimit":"1",`+begin+`,`+end+`}`, "perUserLimit"),
		bad("CreateNameEmpty", "POST", create, `{"name":"","stock":5,`+begin+`,`+end+`}`, "name"),
		bad("CreateNameTooLong", "POST", create, `{"name":"`+strings.Repeat("n", 129)+`","stock":5,`+begin+`,`+end+`}`, "name"),
		bad("CreateNameTooLongMultibyte", "POST", create, `{"name":"`+strings.Repeat("é", 129)+`","stock":5,`+begin+`,`+end+`}`, "name"),
		bad("CreatePerUserLimitOverMax", "POST", create, `{"name":"ok","stock":5,"perUserLimit":1001,`+begin+`,`+end+`}`, "perUserLimit"),
		bad("CreateNameMissing", "POST", create, `{"stock":5,`+begin+`,`+end+`}`, "name"),
		bad("CreateNameNumber", "POST", create, `{"name":5,"stock":5,`+begin+`,`+end+`}`, "name"),
		bad("CreateDescriptionTooLong", "POST", create, `{"name":"ok","description":"`+strings.Repeat("d", 2001)+`","stock":5,`+begin+`,`+end+`}`, "description"),
		bad("CreateEndBeforeBegin", "POST", create, `{"name":"ok","stock":5,"beginAt":"2030-01-02T00:00:00Z","endAt":"2030-01-01T00:00:00Z"}`, "endAt"),
		bad("CreateEndEqualsBegin", "POST", create, `{"name":"ok","stock":5,"beginAt":"2030-01-02T00:00:00Z","endAt":"2030-01-02T00:00:00Z"}`, "endAt"),
		bad("CreateBeginBadFormat", "POST", create, `{"name":"ok","stock":5,"beginAt":"2030-01-01 00:00:00",`+end+`}`, "beginAt"),
		bad("CreateEndBadFormat", "POST", create, `{"name":"ok","stock":5,`+begin+`,"endAt":"tomorrow"}`, "endAt"),
		bad("CreateBeginNumber", "POST", create, `{"name":"ok","stock":5,"beginAt":1893456000,`+end+`}`, "beginAt"),
		bad("CreateBeginMissing", "POST", create, `{"name":"ok","stock":5,`+end+`}`, "beginAt"),
		bad("CreateTrailingGarbage", "POST", create, valid+` x`, "body"),
		bad("CreateTwoObjects", "POST", create, valid+valid, "body"),
		{"CreateOver8KiB", "POST", create, `{"name":"ok","description":"` + strings.Repeat("d", 9000) + `","stock":5,` + begin + `,` + end + `}`, bearer, http.StatusRequestEntityTooLarge, "too_large", ""},

		bad("PatchMalformedJSON", "PATCH", patch, `{"name":`, "body"),
		bad("PatchArray", "PATCH", patch, `[]`, "body"),
		bad("PatchUnknownField", "PATCH", patch, `{"state":"open"}`, "state"),
		bad("PatchStockZero", "PATCH", patch, `{"stock":0}`, "stock"),
		bad("PatchStockString", "PATCH", patch, `{"stock":"7"}`, "stock"),
		bad("PatchNameEmpty", "PATCH", patch, `{"name":""}`, "name"),
		bad("PatchEndBeforeBegin", "PATCH", patch, `{"endAt":"2029-12-31T00:00:00Z"}`, "endAt"),
		bad("PatchBadTime", "PATCH", patch, `{"beginAt":"soon"}`, "beginAt"),
		bad("PatchTrailingGarbage", "PATCH", patch, `{"name":"x"}]`, "body"),
		{"PatchOver8KiB", "PATCH", patch, `{"description":"` + strings.Repeat("d", 9000) + `"}`, bearer, http.StatusRequestEntityTooLarge, "too_large", ""},

		bad("JoinMalformedJSON", "POST", join, `{"userId":`, "body"),
		bad("JoinEmptyBody", "POST", join, ``, "body"),
		bad("JoinArray", "POST", join, `[{"userId":"u-ok"}]`, "body"),
		bad("JoinString", "POST", join, `"u-ok"`, "body"),
		bad("JoinUnknownField", "POST", join, `{"userId":"u-ok","vip":true}`, "vip"),
		bad("JoinUserIDNumber", "POST", join, `{"userId":12345}`, "userId"),
		bad("JoinUserIDNull", "POST", join, `{"userId":null}`, "userId"),
		bad("JoinUserIDMissing", "POST", join, `{}`, "userId"),
		bad("JoinUserIDEmpty", "POST", join, `{"userId":""}`, "userId"),
		bad("JoinUserIDSpace", "POST", join, `{"userId":"u ok"}`, "userId"),
		bad("JoinUserIDSlash", "POST", join, `{"userId":"u/ok"}`, "userId"),
		bad("JoinUserIDColon", "POST", join, `{"userId":"u:ok"}`, "userId"),
		bad("JoinUserIDUnicode", "POST", join, `{"userId":"üser"}`, "userId"),
		bad("JoinUserIDMarkup", "POST", join, `{"userId":"<script>"}`, "userId"),
		bad("JoinUserIDNUL", "POST", join, `{"userId":"u\u0000ok"}`, "userId"),
		bad("JoinUserID65Chars", "POST", join, `{"userId":"`+strings.Repeat("u", 65)+`"}`, "userId"),
		bad("JoinTrailingGarbage", "POST", join, `{"userId":"u-ok"} x`, "body"),
		bad("JoinTwoObjects", "POST", join, `{"userId":"u-ok"}{"userId":"u-ok2"}`, "body"),
		{"JoinOver8KiB", "POST", join, `{"userId":"` + strings.Repeat("u", 9000) + `"}`, "-", http.StatusRequestEntityTooLarge, "too_large", ""},
		{"JoinOver8KiBOfWhitespace", "POST", join, `{"userId":"u-ok"}` + strings.Repeat(" ", 9000), "-", http.StatusRequestEntityTooLarge, "too_large", ""},

		bad("ListBadState", "GET", create+"?state=running", "", "state"),
		bad("ListEmptyState", "GET", create+"?state=", "", "state"),
		bad("ListLimitZero", "GET", create+"?limit=0", "", "limit"),
		bad("ListLimit101", "GET", create+"?limit=101", "", "limit"),
		bad("ListLimitWord", "GET", create+"?limit=ten", "", "limit"),
		bad("ListOffsetNegative", "GET", create+"?offset=-1", "", "offset"),
		bad("ListOffsetWord", "GET", create+"?offset=x", "", "offset"),

		{"UnknownRoute", "GET", "/api/v1/nothing", "", "-", http.StatusNotFound, "not_found", ""},
		{"UnknownVersion", "POST", fmt.Sprintf("/api/v2/activities/%d/join", open.ID), `{"userId":"u-ok"}`, "-", http.StatusNotFound, "not_found", ""},
		{"UnknownAdminAction", "POST", fmt.Sprintf("/api/v1/admin/activities/%d/delete", draft.ID), "", bearer, http.StatusNotFound, "not_found", ""},
		{"JoinWithGet", "GET", join, "", "-", http.StatusMethodNotAllowed, "method_not_allowed", ""},
		{"JoinWithPut", "PUT", join, `{"userId":"u-ok"}`, "-", http.StatusMethodNotAllowed, "method_not_allowed", ""},
		{"DeleteActivity", "DELETE", patch, "", bearer, http.StatusMethodNotAllowed, "method_not_allowed", ""},
		{"PostHealthz", "POST", "/healthz", "", "-", http.StatusMethodNotAllowed, "method_not_allowed", ""},
	}

	badIDs := []struct{ name, id string }{
		{"Letters", "abc"}, {"Zero", "0"}, {"Negative", "-1"}, {"Overflow", "99999999999999999999"},
		{"Fraction", "1.5"}, {"Space", "%20"},
	}
	for _, b := range badIDs {
		tests = append(tests,
			bad("JoinID"+b.name, "POST", "/api/v1/activities/"+b.id+"/join", `{"userId":"u-ok"}`, "id"),
			bad("PublicGetID"+b.name, "GET", "/api/v1/activities/"+b.id, "", "id"),
			bad("AdminGetID"+b.name, "GET", "/api/v1/admin/activities/"+b.id, "", "id"),
			bad("PatchID"+b.name, "PATCH", "/api/v1/admin/activities/"+b.id, `{"name":"x"}`, "id"),
			bad("ApproveID"+b.name, "POST", "/api/v1/admin/activities/"+b.id+"/approve", "", "id"),
		)
	}

	adminCalls := []struct{ name, method, path, body string }{
		{"Create", "POST", create, valid},
		{"List", "GET", create, ""},
		{"Get", "GET", patch, ""},
		{"Patch", "PATCH", patch, `{"name":"hijacked"}`},
		{"Approve", "POST", patch + "/approve", ""},
		{"Close", "POST", fmt.Sprintf("/api/v1/admin/activities/%d/close", open.ID), ""},
	}
	auths := []struct{ name, header string }{
		{"NoAuthorization", "-"},
		{"WrongToken", "Bearer wrong-" + adminToken},
		{"EmptyBearer", "Bearer "},
		{"BareBearer", "Bearer"},
		{"TokenWithoutScheme", adminToken},
		{"BasicScheme", "Basic " + adminToken},
		{"TokenWithSuffix", bearer + "x"},
	}
	for _, c := range adminCalls {
		for _, au := range auths {
			tests = append(tests, tc{c.name + au.name, c.method, c.path, c.body, au.header, http.StatusUnauthorized, "unauthorized", ""})
		}
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := a.snapshot(t, draft.ID, open.ID)
			var header []string
			if tt.auth != "-" {
				header = []string{"Authorization", tt.auth}
			}
			r := a.call(t, tt.method, tt.path, tt.body, header...)
			wantError(t, r, tt.status, tt.code, tt.field)
			if after := a.snapshot(t, draft.ID, open.ID); after != before {
				t.Fatalf("the request changed state:\nbefore %+v\nafter  %+v", before, after)
			}
		})
	}

	t.Run("MethodNotAllowedNamesAllowed", func(t *testing.T) {
		r := a.call(t, "GET", join, "")
		if allow := r.header.Get("Allow"); !strings.Contains(allow, "POST") {
			t.Fatalf("Allow %q, want POST", allow)
		}
	})

	// The bad requests above must not have hidden a broken happy path.
	t.Run("ValidRequestsStillWork", func(t *testing.T) {
		decode[tokenJSON](t, a.join(t, open.ID, "u-ok"), http.StatusOK)
		if st := a.get(t, open.ID).Stats; st.Claimed != 1 {
			t.Fatalf("claimed %d after one valid join, want 1", st.Claimed)
		}
		decode[activityJSON](t, a.admin(t, "PATCH", patch, `{"name":"renamed"}`), http.StatusOK)
		a.create(t, valid)
	})
}

func TestOperations(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	up := []httpapi.Check{
		{Name: "redis", Ping: func(ctx context.Context) error { return env.Redis.Ping(ctx).Err() }},
		{Name: "mysql", Ping: func(ctx context.Context) error { return env.DB.PingContext(ctx) }},
	}
	serve := func(checks ...httpapi.Check) *api {
		return &api{env: env, h: httpapi.New(env.Svc, httpapi.Config{AdminToken: adminToken, Checks: checks, Log: testenv.Logger(t)})}
	}

	t.Run("HealthzIsOK", func(t *testing.T) {
		decode[map[string]any](t, serve().call(t, "GET", "/healthz", ""), http.StatusOK)
	})

	t.Run("ReadyzIsOKWhenChecksPass", func(t *testing.T) {
		decode[map[string]any](t, serve(up...).call(t, "GET", "/readyz", ""), http.StatusOK)
	})

	t.Run("ReadyzNamesFailingCheck", func(t *testing.T) {
		down := httpapi.Check{Name: "kafka", Ping: func(context.Context) error { return errors.New("connection refused") }}
		r := serve(append(up, down)...).call(t, "GET", "/readyz", "")
		wantError(t, r, http.StatusServiceUnavailable, "unavailable", "kafka")
		if bytes.Contains(r.body, []byte("redis")) || bytes.Contains(r.body, []byte("mysql")) {
			t.Errorf("readyz names checks that pass: %s", r.body)
		}
	})

	t.Run("MetricsCountJoins", func(t *testing.T) {
		s := serve()
		act := s.inState(t, "open", 1, 1)
		decode[tokenJSON](t, s.join(t, act.ID, "m-1"), http.StatusOK)
		wantError(t, s.join(t, act.ID, "m-2"), http.StatusConflict, "sold_out", "")
		r := s.call(t, "GET", "/metrics", "")
		if r.status != http.StatusOK {
			t.Fatalf("metrics: %s", r)
		}
		for _, want := range []string{
			`seckill_joins_total{outcome="ok"} 1`,
			`seckill_joins_total{outcome="sold_out"} 1`,
			`seckill_join_duration_seconds_count 2`,
		} {
			if !bytes.Contains(r.body, []byte(want)) {
				t.Errorf("metrics have no %q:\n%s", want, r.body)
			}
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("metrics Content-Type %q, want text/plain", ct)
		}
	})

	t.Run("ReadyzAnswersPromptlyWhenACheckHangs", func(t *testing.T) {
		hang := httpapi.Check{Name: "slow", Ping: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }}
		done := make(chan reply, 1)
		go func() { done <- serve(hang).call(t, "GET", "/readyz", "") }()
		select {
		case r := <-done:
			wantError(t, r, http.StatusServiceUnavailable, "unavailable", "slow")
		case <-time.After(10 * time.Second):
			t.Fatal("readyz did not answer within 10s while a check hung")
		}
	})
}

func TestJoinIdempotencyKey(t *testing.T) {
	a := newAPI(t)
	act := a.inState(t, "open", 5, 1)
	path := fmt.Sprintf("/api/v1/activities/%d/join", act.ID)
	first := decode[tokenJSON](t, a.call(t, "POST", path, `{"userId":"retry"}`, "Idempotency-Key", "k-1"), http.StatusOK)
	again := decode[tokenJSON](t, a.call(t, "POST", path, `{"userId":"retry"}`, "Idempotency-Key", "k-1"), http.StatusOK)
	if again != first {
		t.Fatalf("retry answered %+v, want the first answer %+v", again, first)
	}
	if st := a.get(t, act.ID).Stats; st.Claimed != 1 {
		t.Fatalf("claimed %d after a retry, want 1", st.Claimed)
	}
	wantError(t, a.call(t, "POST", path, `{"userId":"retry"}`, "Idempotency-Key", "bad key!"),
		http.StatusBadRequest, "invalid_request", "Idempotency-Key")
}
