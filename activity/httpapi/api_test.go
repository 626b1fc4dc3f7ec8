package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"seckill/activity"
	"seckill/activity/httpapi"
	"seckill/internal/testenv"
)

// The tests of the API's resources drive a Server on the real Redis and
// MariaDB in process, a file a resource: admin_test.go (create, list, patch,
// transitions), join_test.go, tokens_test.go, public_test.go, stats_test.go,
// badinput_test.go (every bad request answers its error and changes nothing)
// and operations_test.go (health, readiness, metrics). This file holds what
// they share.

const adminToken = "admin-test-token-4f1c9a"

// noSignInLimit turns the failed sign-ins' limit off: the bad-input tests
// fail to sign in by the hundred.
var noSignInLimit = httpapi.Limit{Rate: -1}

// api is a Server over a test environment of its own, driven in process.
type api struct {
	env *testenv.Env
	h   http.Handler
}

func newAPI(t *testing.T) *api {
	t.Helper()
	env := testenv.New(t, testenv.Options{})
	return &api{env: env, h: httpapi.New(env.Svc, httpapi.Config{AdminToken: adminToken, Log: testenv.Logger(t),
		Staff: activity.NewStaffing(env.Repo), SignInFailures: noSignInLimit})}
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
	return a.callWith(t, method, path, body, func(h http.Header) {
		for i := 0; i+1 < len(header); i += 2 {
			h.Set(header[i], header[i+1])
		}
	})
}

// callWith sends one request whose headers set changes.
func (a *api) callWith(t *testing.T, method, path, body string, set func(http.Header)) reply {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	set(req.Header)
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
	want := 2
	// Four codes carry fields more: limit_reached the tokens the user
	// holds, already_redeemed when, stock_conflict the slots claimed and
	// the lowest the stock may go to, unavailable the dependency down.
	extra := map[string][]string{"limit_reached": {"tokens"}, "already_redeemed": {"redeemedAt"},
		"stock_conflict": {"claimed", "lowest"}, "unavailable": {"dependency"}}
	for _, f := range extra[code] {
		if _, ok := detail[f]; ok {
			want++
		}
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
	Shards       int        `json:"shards"`
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
	Total      *int64         `json:"total"`
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

// joined creates an open activity of stock 3 whose window holds now and joins
// it as user: it returns the activity and the token answered.
func (a *api) joined(t *testing.T, user string) (activityJSON, tokenJSON) {
	t.Helper()
	act := a.inState(t, "open", 3, 1)
	return act, decode[tokenJSON](t, a.join(t, act.ID, user), http.StatusOK)
}

func title(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

// snapshot is everything a bad request must leave as it was.
type snapshot struct {
	activities, participations int
	redeemed, staff, audit     int
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
	if err := a.env.DB.Get(&s.redeemed, "SELECT COUNT(*) FROM participations WHERE redeemed_at IS NOT NULL"); err != nil {
		t.Fatal(err)
	}
	if err := a.env.DB.Get(&s.staff, "SELECT COUNT(*) FROM staff"); err != nil {
		t.Fatal(err)
	}
	if err := a.env.DB.Get(&s.audit, "SELECT COUNT(*) FROM audit"); err != nil {
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
