package httpapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"seckill/activity/httpapi"
	"seckill/internal/testenv"
)

// TestDecodeRejectsAmbiguousNames: encoding/json matches member names
// without regard to case (and folds ſ to s and K to k) and keeps the last of
// duplicate names, so {"userId":"alice","USERID":"mallory"} joins as mallory.
// The contract answers unknown fields with 400; a gateway that sets userId
// and a server that reads another member must not disagree about the user.
func TestDecodeRejectsAmbiguousNames(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	draft := a.create(t, `{"name":"draft","stock":5,"beginAt":"2030-01-01T00:00:00Z","endAt":"2030-01-02T00:00:00Z"}`)
	open := a.inState(t, "open", 10, 1)
	const window = `"beginAt":"2030-01-01T00:00:00Z","endAt":"2030-01-02T00:00:00Z"`
	join := fmt.Sprintf("/api/v1/activities/%d/join", open.ID)
	patch := fmt.Sprintf("/api/v1/admin/activities/%d", draft.ID)
	tests := []struct{ name, method, path, body, field string }{
		{"JoinDuplicate", "POST", join, `{"userId":"alice","userId":"mallory"}`, "userId"},
		{"JoinDuplicateOtherCase", "POST", join, `{"userId":"alice","USERID":"mallory"}`, "USERID"},
		{"JoinUpperCase", "POST", join, `{"USERID":"mallory"}`, "USERID"},
		{"JoinLowerCase", "POST", join, `{"userid":"mallory"}`, "userid"},
		{"JoinLongS", "POST", join, `{"uſerId":"mallory"}`, "uſerId"},
		{"CreateDuplicate", "POST", "/api/v1/admin/activities", `{"name":"a","name":"b","stock":5,` + window + `}`, "name"},
		{"CreateOtherCase", "POST", "/api/v1/admin/activities", `{"Name":"a","STOCK":5,` + window + `}`, "Name"},
		{"CreateKelvin", "POST", "/api/v1/admin/activities", `{"name":"a","stoc\u212a":5,` + window + `}`, "stoc\u212a"},
		{"PatchDuplicateNull", "PATCH", patch, `{"name":"changed","name":null}`, "name"},
		{"PatchOtherCase", "PATCH", patch, `{"NAME":"changed"}`, "NAME"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := a.snapshot(t, draft.ID, open.ID)
			r := a.call(t, tt.method, tt.path, tt.body, "Authorization", "Bearer "+adminToken)
			wantError(t, r, http.StatusBadRequest, "invalid_request", tt.field)
			if after := a.snapshot(t, draft.ID, open.ID); after != before {
				t.Fatalf("the request changed state:\nbefore %+v\nafter  %+v", before, after)
			}
		})
	}
}

// TestJoinRateLimitKeys: the per-user limit must hold whatever the spelling
// of the activity id (the server reads "7", "07" and "+7" as the same
// activity), and must not keep a bucket for a userId that is not one.
func TestJoinRateLimitKeys(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	a := env.OpenActivity(t, 1000, 1000)
	h := httpapi.New(env.Svc, httpapi.Config{AdminToken: adminToken, Log: testenv.Logger(t),
		PerUser: httpapi.Limit{Rate: 0.001, Burst: 3}})
	join := func(id, body string) int {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/activities/"+id+"/join", strings.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}

	t.Run("IDSpellingsShareTheLimit", func(t *testing.T) {
		before, _, _ := env.Store.Counters(t.Context(), a.ID)
		codes := map[int]int{}
		for i := range 10 {
			// 7, 07, 007, ... and +7, +07, ...
			id := strings.Repeat("0", i/2) + fmt.Sprint(a.ID)
			if i%2 == 1 {
				id = "+" + id
			}
			codes[join(id, `{"userId":"spelling"}`)]++
		}
		after, _, _ := env.Store.Counters(t.Context(), a.ID)
		if codes[http.StatusOK] != 3 || codes[http.StatusTooManyRequests] != 7 || after.Claimed-before.Claimed != 3 {
			t.Fatalf("answers %v and %d slots taken, want 3 joins and 7 rate limited: the per-user key is the id as spelt (server.go joinOnce: c.Param(\"id\"))",
				codes, after.Claimed-before.Claimed)
		}
	})

	t.Run("InvalidUserIDIsNotCounted", func(t *testing.T) {
		// Each distinct userId, up to 8 KiB of it, would hold a bucket for a
		// minute: memory an attacker fills with one request each.
		body := `{"userId":"` + strings.Repeat("x", 100) + ` not a user id"}`
		for i := range 5 {
			if got := join(fmt.Sprint(a.ID), body); got != http.StatusBadRequest {
				t.Fatalf("invalid userId, request %d: %d, want 400: the per-user limiter counts it before the userId is validated", i+1, got)
			}
		}
	})
}
