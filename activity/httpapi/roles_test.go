package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"seckill/activity"
	"seckill/activity/httpapi"
	"seckill/internal/testenv"
)

// staffToken adds a staff member and returns their token.
func (a *api) staffToken(t *testing.T, name string, role activity.Role) string {
	t.Helper()
	_, tok, err := activity.NewStaffing(a.env.Repo).Add(context.Background(), name, role)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// as sends one request with a staff member's token.
func (a *api) as(t *testing.T, tok, method, path, body string) reply {
	t.Helper()
	return a.call(t, method, path, body, "Authorization", "Bearer "+tok)
}

// TestRoleMatrix sends every admin endpoint with the credential of every
// role, each on an activity in the state the call needs: a role the
// endpoint is for is answered as the admin is; any other 403 forbidden,
// nothing changed.
func TestRoleMatrix(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	tokens := map[activity.Role]string{activity.RoleAdmin: adminToken}
	for _, r := range activity.Roles {
		if r != activity.RoleAdmin {
			tokens[r] = a.staffToken(t, "staff-"+string(r), r)
		}
	}
	type endpoint struct {
		name  string
		roles []activity.Role // besides admin
		// call makes what the call needs and returns it.
		call   func(t *testing.T) (method, path, body string)
		status int // of an allowed call
	}
	var (
		readers = []activity.Role{activity.RoleViewer, activity.RoleEditor, activity.RoleApprover, activity.RoleOperator}
		ed      = []activity.Role{activity.RoleEditor}
		ap      = []activity.Role{activity.RoleApprover}
		op      = []activity.Role{activity.RoleOperator}
		all     = activity.Roles
	)
	inState := func(state string) func(t *testing.T) int64 {
		return func(t *testing.T) int64 { return a.inState(t, state, 5, 1).ID }
	}
	on := func(state, method, suffix, body string) func(t *testing.T) (string, string, string) {
		return func(t *testing.T) (string, string, string) {
			return method, fmt.Sprintf("/api/v1/admin/activities/%d%s", inState(state)(t), suffix), body
		}
	}
	token := func(t *testing.T) (string, string, string) {
		_, tok := a.joined(t, "u-matrix")
		a.env.Reconcile(t)
		return "POST", "/api/v1/admin/tokens/" + tok.Token + "/redeem", ""
	}
	fixed := func(method, path, body string) func(t *testing.T) (string, string, string) {
		return func(*testing.T) (string, string, string) { return method, path, body }
	}
	n := 0
	staffName := func(t *testing.T) (string, string, string) {
		n++
		name := fmt.Sprintf("victim-%d", n)
		a.staffToken(t, name, activity.RoleViewer)
		return "DELETE", "/api/v1/admin/staff/" + name, ""
	}
	endpoints := []endpoint{
		{"Me", all, fixed("GET", "/api/v1/admin/me", ""), http.StatusOK},
		{"List", append(readers, activity.RoleDraw), fixed("GET", "/api/v1/admin/activities", ""), http.StatusOK},
		{"Get", append(readers, activity.RoleDraw), on("open", "GET", "", ""), http.StatusOK},
		{"Timeline", append(readers, activity.RoleDraw), on("open", "GET", "/timeline", ""), http.StatusOK},
		{"Create", ed, fixed("POST", "/api/v1/admin/activities", activityBody("matrix", 3, 1)), http.StatusCreated},
		{"EditDraft", ed, on("draft", "PATCH", "", `{"name":"edited"}`), http.StatusOK},
		{"AutoOpenOfApproved", op, on("approved", "PATCH", "", `{"autoOpen":true}`), http.StatusOK},
		{"Approve", ap, on("draft", "POST", "/approve", ""), http.StatusOK},
		{"Refuse", ap, on("draft", "POST", "/refuse", ""), http.StatusOK},
		{"Open", op, on("approved", "POST", "/open", ""), http.StatusOK},
		{"Close", op, on("open", "POST", "/close", ""), http.StatusOK},
		{"Stock", op, on("open", "POST", "/stock", `{"stock":9}`), http.StatusOK},
		{"Draft", []activity.Role{activity.RoleEditor, activity.RoleApprover}, on("approved", "POST", "/draft", ""), http.StatusOK},
		{"Duplicate", ed, on("closed", "POST", "/duplicate", ""), http.StatusCreated},
		{"Export", append(readers, activity.RoleDraw), on("open", "GET", "/participations", ""), http.StatusOK},
		{"Redeem", []activity.Role{activity.RoleDraw}, token, http.StatusOK},
		{"Audit", readers, fixed("GET", "/api/v1/admin/audit", ""), http.StatusOK},
		{"StaffList", nil, fixed("GET", "/api/v1/admin/staff", ""), http.StatusOK},
		{"StaffAdd", nil, func(*testing.T) (string, string, string) {
			n++
			return "POST", "/api/v1/admin/staff", fmt.Sprintf(`{"name":"new-%d","role":"viewer"}`, n)
		}, http.StatusCreated},
		{"StaffRemove", nil, staffName, http.StatusNoContent},
	}
	for _, e := range endpoints {
		for _, role := range activity.Roles {
			allowed := role == activity.RoleAdmin
			for _, r := range e.roles {
				allowed = allowed || r == role
			}
			t.Run(e.name+"As"+title(string(role)), func(t *testing.T) {
				method, path, body := e.call(t)
				var before int
				if err := a.env.DB.Get(&before, "SELECT COUNT(*) FROM audit"); err != nil {
					t.Fatal(err)
				}
				r := a.as(t, tokens[role], method, path, body)
				if allowed {
					if r.status != e.status {
						t.Fatalf("%s %s as %s: %s, want %d", method, path, role, r, e.status)
					}
					return
				}
				wantError(t, r, http.StatusForbidden, "forbidden", "")
				if !strings.Contains(string(r.body), string(role)) {
					t.Errorf("the refusal %s does not name the role %s", r.body, role)
				}
				var after int
				if err := a.env.DB.Get(&after, "SELECT COUNT(*) FROM audit"); err != nil || after != before {
					t.Fatalf("a refused call left %d audit entries, had %d (%v)", after, before, err)
				}
			})
		}
	}
	// A role allowed PATCH still edits only what it is for.
	t.Run("OperatorMayNotEditADraft", func(t *testing.T) {
		id := inState("draft")(t)
		wantError(t, a.as(t, tokens[activity.RoleOperator], "PATCH", fmt.Sprintf("/api/v1/admin/activities/%d", id), `{"name":"x"}`),
			http.StatusForbidden, "forbidden", "")
	})
	t.Run("EditorMayNotSwitchAutoOpenOfApproved", func(t *testing.T) {
		id := inState("approved")(t)
		wantError(t, a.as(t, tokens[activity.RoleEditor], "PATCH", fmt.Sprintf("/api/v1/admin/activities/%d", id), `{"autoOpen":true}`),
			http.StatusForbidden, "forbidden", "")
	})
}

// TestFourEyes: an approver does not approve or refuse a draft they created
// or last edited, whatever role they had then; another approver does.
func TestFourEyes(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	staff := activity.NewStaffing(a.env.Repo)
	ctx := context.Background()
	carol := a.staffToken(t, "carol", activity.RoleEditor)
	created := decode[activityJSON](t, a.as(t, carol, "POST", "/api/v1/admin/activities", activityBody("carol's", 3, 1)), http.StatusCreated)
	erin := a.staffToken(t, "erin", activity.RoleEditor)
	decode[activityJSON](t, a.as(t, erin, "PATCH", fmt.Sprintf("/api/v1/admin/activities/%d", created.ID), `{"name":"erin's edit"}`), http.StatusOK)
	other := decode[activityJSON](t, a.as(t, carol, "POST", "/api/v1/admin/activities", activityBody("another", 3, 1)), http.StatusCreated)
	// carol and erin become approvers.
	for _, name := range []string{"carol", "erin"} {
		if err := staff.Remove(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	carol, erin = a.staffToken(t, "carol", activity.RoleApprover), a.staffToken(t, "erin", activity.RoleApprover)
	frank := a.staffToken(t, "frank", activity.RoleApprover)
	path := func(id int64, action string) string { return fmt.Sprintf("/api/v1/admin/activities/%d/%s", id, action) }

	for _, c := range []struct{ who, tok, action, why string }{
		{"carol", carol, "approve", "created"}, {"carol", carol, "refuse", "created"},
		{"erin", erin, "approve", "last edited"}, {"erin", erin, "refuse", "last edited"},
	} {
		r := a.as(t, c.tok, "POST", path(created.ID, c.action), "")
		wantError(t, r, http.StatusForbidden, "forbidden", "")
		if !strings.Contains(string(r.body), c.why) {
			t.Errorf("%s's %s refused with %s; want it to say %q", c.who, c.action, r.body, c.why)
		}
	}
	// erin neither created nor last edited the other draft.
	decode[activityJSON](t, a.as(t, erin, "POST", path(other.ID, "refuse"), ""), http.StatusOK)
	got := decode[activityJSON](t, a.as(t, frank, "POST", path(created.ID, "approve"), ""), http.StatusOK)
	if got.State != "approved" {
		t.Fatalf("state %s after frank's approval", got.State)
	}
}

type auditJSON struct {
	Entries []struct {
		ID         int64           `json:"id"`
		Actor      string          `json:"actor"`
		Role       string          `json:"role"`
		Action     string          `json:"action"`
		ActivityID int64           `json:"activityId"`
		Target     string          `json:"target"`
		Before     json.RawMessage `json:"before"`
		After      json.RawMessage `json:"after"`
		RequestID  string          `json:"requestId"`
	} `json:"entries"`
	Next string `json:"next"`
}

// TestAuditLog: each change made through the admin API is an entry with
// its actor, role, request ID and the state before and after, newest first;
// a refused action is none; nothing edits or deletes an entry.
func TestAuditLog(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	ed, ap := a.staffToken(t, "ed", activity.RoleEditor), a.staffToken(t, "ann", activity.RoleApprover)
	op, dr := a.staffToken(t, "otto", activity.RoleOperator), a.staffToken(t, "drew", activity.RoleDraw)
	send := func(tok, method, path, body, requestID string) reply {
		t.Helper()
		r := a.call(t, method, path, body, "Authorization", "Bearer "+tok, "X-Request-ID", requestID)
		if r.status >= 300 {
			t.Fatalf("%s %s: %s", method, path, r)
		}
		return r
	}
	act := decode[activityJSON](t, send(ed, "POST", "/api/v1/admin/activities", activityBody("audited", 3, 1), "req-create"), http.StatusCreated)
	p := fmt.Sprintf("/api/v1/admin/activities/%d", act.ID)
	send(ed, "PATCH", p, `{"stock":4}`, "req-edit")
	wantError(t, a.as(t, ed, "POST", p+"/approve", ""), http.StatusForbidden, "forbidden", "") // refused: no entry
	send(ap, "POST", p+"/approve", "", "req-approve")
	send(op, "PATCH", p, `{"autoOpen":true}`, "req-auto")
	send(op, "POST", p+"/open", "", "req-open")
	send(op, "POST", p+"/stock", `{"stock":6}`, "req-stock")
	tok := decode[tokenJSON](t, a.join(t, act.ID, "u-1"), http.StatusOK)
	a.env.Reconcile(t)
	send(dr, "POST", "/api/v1/admin/tokens/"+tok.Token+"/redeem", "", "req-redeem")
	send(op, "POST", p+"/close", "", "req-close")

	log := decode[auditJSON](t, a.admin(t, "GET", fmt.Sprintf("/api/v1/admin/audit?activityId=%d", act.ID), ""), http.StatusOK)
	want := []struct{ actor, role, action, request string }{
		{"otto", "operator", "close", "req-close"}, {"drew", "draw", "redeem", "req-redeem"},
		{"otto", "operator", "stock", "req-stock"}, {"otto", "operator", "open", "req-open"},
		{"otto", "operator", "auto_open", "req-auto"}, {"ann", "approver", "approve", "req-approve"},
		{"ed", "editor", "edit", "req-edit"}, {"ed", "editor", "create", "req-create"},
	}
	if len(log.Entries) != len(want) {
		t.Fatalf("%d entries, want %d: %+v", len(log.Entries), len(want), log.Entries)
	}
	for i, w := range want {
		e := log.Entries[i]
		if e.Actor != w.actor || e.Role != w.role || e.Action != w.action || e.RequestID != w.request || e.ActivityID != act.ID {
			t.Errorf("entry %d is %s/%s/%s/%s, want %+v", i, e.Actor, e.Role, e.Action, e.RequestID, w)
		}
	}
	stock := log.Entries[2]
	var before, after struct{ Stock int64 }
	if json.Unmarshal(stock.Before, &before) != nil || json.Unmarshal(stock.After, &after) != nil || before.Stock != 4 || after.Stock != 6 {
		t.Errorf("the stock entry says %s → %s, want 4 → 6", stock.Before, stock.After)
	}
	if string(log.Entries[7].Before) != "null" {
		t.Errorf("the create entry's before is %s, want null", log.Entries[7].Before)
	}
	if log.Entries[1].Target != tok.Token {
		t.Errorf("the redeem entry's target is %q, want the token", log.Entries[1].Target)
	}

	// Paging, and the filter by actor.
	page := decode[auditJSON](t, a.admin(t, "GET", fmt.Sprintf("/api/v1/admin/audit?activityId=%d&limit=5", act.ID), ""), http.StatusOK)
	rest := decode[auditJSON](t, a.admin(t, "GET", fmt.Sprintf("/api/v1/admin/audit?activityId=%d&limit=5&after=%s", act.ID, page.Next), ""), http.StatusOK)
	if len(page.Entries) != 5 || page.Next == "" || len(rest.Entries) != 3 || rest.Entries[0].ID != log.Entries[5].ID {
		t.Errorf("pages of 5: %d (next %q) then %d entries", len(page.Entries), page.Next, len(rest.Entries))
	}
	byOtto := decode[auditJSON](t, a.admin(t, "GET", "/api/v1/admin/audit?actor=otto", ""), http.StatusOK)
	if len(byOtto.Entries) != 4 {
		t.Errorf("%d entries by otto, want 4", len(byOtto.Entries))
	}

	// Append-only, even for the database's own user.
	if _, err := a.env.DB.Exec("UPDATE audit SET actor = 'mallory'"); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("an UPDATE of the audit log: %v, want it refused", err)
	}
	if _, err := a.env.DB.Exec("DELETE FROM audit"); err == nil {
		t.Error("a DELETE of the audit log was allowed")
	}
}

// TestSignInLimit: after the failed sign-ins a client address is allowed,
// every admin request from it answers 429, the right token included, so
// that a guess is never told right; the failures are counted.
func TestSignInLimit(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	a := &api{env: env, h: httpapi.New(env.Svc, httpapi.Config{AdminToken: adminToken, Log: testenv.Logger(t),
		Staff: activity.NewStaffing(env.Repo)})}
	for i := range httpapi.DefaultSignInFailures.Burst {
		wantError(t, a.call(t, "GET", "/api/v1/admin/me", "", "Authorization", fmt.Sprintf("Bearer guess-%d", i)),
			http.StatusUnauthorized, "unauthorized", "")
	}
	wantError(t, a.call(t, "GET", "/api/v1/admin/me", "", "Authorization", "Bearer guess-more"), http.StatusTooManyRequests, "rate_limited", "")
	wantError(t, a.admin(t, "GET", "/api/v1/admin/me", ""), http.StatusTooManyRequests, "rate_limited", "")

	// Guesses sent at once are held to the limit as well: each is paid for
	// before its token is judged.
	b := &api{env: env, h: httpapi.New(env.Svc, httpapi.Config{AdminToken: adminToken, Log: testenv.Logger(t),
		Staff: activity.NewStaffing(env.Repo)})}
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			r := b.call(t, "GET", "/api/v1/admin/me", "", "Authorization", fmt.Sprintf("Bearer parallel-%d", i))
			mu.Lock()
			codes[r.status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes[http.StatusUnauthorized] > httpapi.DefaultSignInFailures.Burst+1 || codes[http.StatusTooManyRequests] == 0 {
		t.Errorf("100 guesses at once answered %v: more were judged than the limit allows", codes)
	}
	body := string(a.call(t, "GET", "/metrics", "").body)
	if !strings.Contains(body, fmt.Sprintf("seckill_admin_sign_in_failures_total %d", httpapi.DefaultSignInFailures.Burst)) {
		t.Errorf("the metrics do not count %d failed sign-ins", httpapi.DefaultSignInFailures.Burst)
	}
}
