package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"seckill/activity"
)

// TestReturnToDraft: an approved activity goes back to draft, audited as
// draft, and may be edited again; from any other state the answer is 409
// invalid_state; an autoOpen activity returned to draft does not open.
func TestReturnToDraft(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	ed := a.staffToken(t, "eddie", activity.RoleEditor)

	t.Run("FromApproved", func(t *testing.T) {
		act := a.inState(t, "approved", 5, 1)
		p := fmt.Sprintf("/api/v1/admin/activities/%d", act.ID)
		r := a.call(t, "POST", p+"/draft", "", "Authorization", "Bearer "+ed, "X-Request-ID", "req-draft")
		if got := decode[activityJSON](t, r, http.StatusOK); got.State != "draft" {
			t.Fatalf("state %s after draft, want draft", got.State)
		}
		if got := decode[activityJSON](t, a.as(t, ed, "PATCH", p, `{"stock":7}`), http.StatusOK); got.Stock != 7 {
			t.Errorf("the draft's stock is %d after an edit, want 7", got.Stock)
		}
		log := decode[auditJSON](t, a.admin(t, "GET", fmt.Sprintf("/api/v1/admin/audit?activityId=%d&limit=2", act.ID), ""), http.StatusOK)
		if len(log.Entries) != 2 {
			t.Fatalf("%d entries, want 2", len(log.Entries))
		}
		e := log.Entries[1]
		var before, after struct{ State string }
		if e.Action != "draft" || e.Actor != "eddie" || e.RequestID != "req-draft" ||
			json.Unmarshal(e.Before, &before) != nil || json.Unmarshal(e.After, &after) != nil ||
			before.State != "approved" || after.State != "draft" {
			t.Errorf("the entry is %+v, want draft by eddie, approved → draft", e)
		}
	})

	for _, state := range []string{"draft", "refused", "open", "closed"} {
		t.Run("From"+title(state), func(t *testing.T) {
			act := a.inState(t, state, 5, 1)
			wantError(t, a.admin(t, "POST", fmt.Sprintf("/api/v1/admin/activities/%d/draft", act.ID), ""),
				http.StatusConflict, "invalid_state", "")
			if got := a.get(t, act.ID); got.State != state {
				t.Errorf("state %s, want %s", got.State, state)
			}
		})
	}

	t.Run("AutoOpenDoesNotOpen", func(t *testing.T) {
		act := a.inState(t, "approved", 5, 1)
		p := fmt.Sprintf("/api/v1/admin/activities/%d", act.ID)
		decode[activityJSON](t, a.admin(t, "PATCH", p, `{"autoOpen":true}`), http.StatusOK)
		a.act(t, act.ID, "draft")
		a.env.Reconcile(t)
		if got := a.get(t, act.ID); got.State != "draft" {
			t.Fatalf("an autoOpen activity returned to draft is %s after a job cycle, want draft", got.State)
		}
	})
}

// TestDraftRacesOpen: a draft and an open of the same approved activity at
// once: exactly one wins, the other answers 409 invalid_state, and Redis
// holds the activity's state only when the open won.
func TestDraftRacesOpen(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	wins := map[string]int{}
	for range 20 {
		act := a.inState(t, "approved", 5, 1)
		var wg sync.WaitGroup
		status := map[string]int{}
		var mu sync.Mutex
		for _, action := range []string{"open", "draft"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := a.admin(t, "POST", fmt.Sprintf("/api/v1/admin/activities/%d/%s", act.ID, action), "")
				mu.Lock()
				status[action] = r.status
				mu.Unlock()
			}()
		}
		wg.Wait()
		won := ""
		for action, st := range status {
			switch st {
			case http.StatusOK:
				if won != "" {
					t.Fatalf("activity %d: both %s and %s won", act.ID, won, action)
				}
				won = action
			case http.StatusConflict:
			default:
				t.Fatalf("activity %d: %s answered %d", act.ID, action, st)
			}
		}
		if won == "" {
			t.Fatalf("activity %d: neither won: %v", act.ID, status)
		}
		wins[won]++
		got := a.get(t, act.ID)
		_, live, err := a.env.Store.Counters(context.Background(), act.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"open": "open", "draft": "draft"}[won]
		if got.State != want || live != (won == "open") {
			t.Fatalf("activity %d: %s won, state %s, Redis state %v", act.ID, won, got.State, live)
		}
	}
	t.Logf("wins: %v", wins)
}

// TestDuplicate: a duplicate is a new draft with the fields of the
// original, autoOpen off, named "<name> (copy)" cut to 128 characters or
// as the body says, created by the caller, audited as a create with
// duplicateOf.
func TestDuplicate(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	ed := a.staffToken(t, "dupe", activity.RoleEditor)
	begin := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	body := fmt.Sprintf(`{"name":"Spring sale","description":"the one in spring","stock":42,"perUserLimit":3,"shards":3,"beginAt":%q,"endAt":%q,"autoOpen":true}`,
		rfc3339(begin), rfc3339(begin.Add(time.Hour)))
	orig := a.create(t, body)
	a.act(t, orig.ID, "approve")
	a.act(t, orig.ID, "open")

	r := a.call(t, "POST", fmt.Sprintf("/api/v1/admin/activities/%d/duplicate", orig.ID), "", "Authorization", "Bearer "+ed, "X-Request-ID", "req-dup")
	var dup struct {
		activityJSON
		AutoOpen  bool   `json:"autoOpen"`
		CreatedBy string `json:"createdBy"`
	}
	if err := json.Unmarshal(decodeRaw(t, r, http.StatusCreated), &dup); err != nil {
		t.Fatal(err)
	}
	if dup.ID == orig.ID || dup.Name != "Spring sale (copy)" || dup.Description != "the one in spring" || dup.Stock != 42 ||
		dup.PerUserLimit != 3 || dup.Shards != 3 || !dup.BeginAt.Equal(begin) || !dup.EndAt.Equal(begin.Add(time.Hour)) || dup.AutoOpen ||
		dup.State != "draft" || dup.CreatedBy != "dupe" {
		t.Fatalf("duplicate %+v of %+v", dup, orig)
	}
	log := decode[auditJSON](t, a.admin(t, "GET", fmt.Sprintf("/api/v1/admin/audit?activityId=%d", dup.ID), ""), http.StatusOK)
	var after struct {
		DuplicateOf int64 `json:"duplicateOf"`
		Name        string
	}
	if len(log.Entries) != 1 || log.Entries[0].Action != "create" || log.Entries[0].Actor != "dupe" || log.Entries[0].RequestID != "req-dup" ||
		json.Unmarshal(log.Entries[0].After, &after) != nil || after.DuplicateOf != orig.ID || after.Name != "Spring sale (copy)" {
		t.Fatalf("audit of the duplicate: %+v", log.Entries)
	}

	t.Run("NameGiven", func(t *testing.T) {
		got := decode[activityJSON](t, a.admin(t, "POST", fmt.Sprintf("/api/v1/admin/activities/%d/duplicate", orig.ID), `{"name":"Autumn sale"}`), http.StatusCreated)
		if got.Name != "Autumn sale" || got.Stock != 42 {
			t.Errorf("duplicate named Autumn sale: %+v", got)
		}
	})
	t.Run("LongNameCut", func(t *testing.T) {
		long := a.create(t, activityBody(strings.Repeat("é", activity.MaxNameLen), 3, 1))
		got := decode[activityJSON](t, a.admin(t, "POST", fmt.Sprintf("/api/v1/admin/activities/%d/duplicate", long.ID), ""), http.StatusCreated)
		if want := strings.Repeat("é", activity.MaxNameLen); got.Name != want {
			t.Errorf("name %q, want the original's cut to 128 characters", got.Name)
		}
	})
	t.Run("BadName", func(t *testing.T) {
		before := a.countActivities(t)
		for _, body := range []string{`{"name":""}`, `{"name":1}`, `{"name":"` + strings.Repeat("x", 129) + `"}`, `{"stock":3}`, `[`} {
			r := a.admin(t, "POST", fmt.Sprintf("/api/v1/admin/activities/%d/duplicate", orig.ID), body)
			field := "name"
			if body == `{"stock":3}` {
				field = "stock"
			} else if body == `[` {
				field = "body"
			}
			wantError(t, r, http.StatusBadRequest, "invalid_request", field)
		}
		if after := a.countActivities(t); after != before {
			t.Errorf("bad duplicates made %d activities", after-before)
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		wantError(t, a.admin(t, "POST", "/api/v1/admin/activities/999999999/duplicate", ""), http.StatusNotFound, "not_found", "")
	})
}

func (a *api) countActivities(t *testing.T) int {
	t.Helper()
	var n int
	if err := a.env.DB.Get(&n, "SELECT COUNT(*) FROM activities"); err != nil {
		t.Fatal(err)
	}
	return n
}

// decodeRaw checks the status of r and returns its body.
func decodeRaw(t *testing.T, r reply, status int) []byte {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r.body
}
