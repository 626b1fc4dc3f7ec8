package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"seckill/activity/httpapi"
)

// TestBadBodyGoesNoFurther: a body the Server cannot read as its request is
// answered 400 (413 when too large) with the error JSON naming the field,
// and the service is never asked.
func TestBadBodyGoesNoFurther(t *testing.T) {
	const (
		create = "/api/v1/admin/activities"
		patch  = "/api/v1/admin/activities/7"
		join   = "/api/v1/activities/7/join"
		window = `"beginAt":"2030-01-01T00:00:00Z","endAt":"2030-01-02T00:00:00Z"`
	)
	tests := []struct {
		name, method, path, body string
		status                   int
		field                    string
	}{
		{"JoinMalformed", "POST", join, `{"userId":`, http.StatusBadRequest, "body"},
		{"JoinEmpty", "POST", join, ``, http.StatusBadRequest, "body"},
		{"JoinArray", "POST", join, `[{"userId":"u-1"}]`, http.StatusBadRequest, "body"},
		{"JoinUnknownField", "POST", join, `{"userId":"u-1","vip":true}`, http.StatusBadRequest, "vip"},
		{"JoinWrongType", "POST", join, `{"userId":12345}`, http.StatusBadRequest, "userId"},
		{"JoinMissingUser", "POST", join, `{}`, http.StatusBadRequest, "userId"},
		{"JoinNullUser", "POST", join, `{"userId":null}`, http.StatusBadRequest, "userId"},
		{"JoinDuplicate", "POST", join, `{"userId":"alice","userId":"mallory"}`, http.StatusBadRequest, "userId"},
		{"JoinOtherCase", "POST", join, `{"USERID":"mallory"}`, http.StatusBadRequest, "USERID"},
		{"JoinTrailingData", "POST", join, `{"userId":"u-1"} x`, http.StatusBadRequest, "body"},
		{"JoinTwoObjects", "POST", join, `{"userId":"u-1"}{"userId":"u-2"}`, http.StatusBadRequest, "body"},
		{"JoinBadID", "POST", "/api/v1/activities/abc/join", `{"userId":"u-1"}`, http.StatusBadRequest, "id"},
		{"JoinTooLarge", "POST", join, `{"userId":"u-1"}` + strings.Repeat(" ", httpapi.MaxBodyBytes), http.StatusRequestEntityTooLarge, ""},
		{"CreateMalformed", "POST", create, `{"name":"x",`, http.StatusBadRequest, "body"},
		{"CreateNumber", "POST", create, `42`, http.StatusBadRequest, "body"},
		{"CreateStockString", "POST", create, `{"name":"ok","stock":"5",` + window + `}`, http.StatusBadRequest, "stock"},
		{"CreateStockFraction", "POST", create, `{"name":"ok","stock":1.5,` + window + `}`, http.StatusBadRequest, "stock"},
		{"CreateStockHuge", "POST", create, `{"name":"ok","stock":99999999999999999999,` + window + `}`, http.StatusBadRequest, "stock"},
		{"CreateBadTime", "POST", create, `{"name":"ok","stock":5,"beginAt":"tomorrow","endAt":"2030-01-02T00:00:00Z"}`, http.StatusBadRequest, "beginAt"},
		{"CreateTimeNumber", "POST", create, `{"name":"ok","stock":5,"beginAt":1893456000,"endAt":"2030-01-02T00:00:00Z"}`, http.StatusBadRequest, "beginAt"},
		{"CreateKelvin", "POST", create, `{"name":"a","stoc\u212a":5,` + window + `}`, http.StatusBadRequest, "stoc\u212a"},
		{"PatchUnknownField", "PATCH", patch, `{"state":"open"}`, http.StatusBadRequest, "state"},
		{"PatchDuplicateNull", "PATCH", patch, `{"name":"changed","name":null}`, http.StatusBadRequest, "name"},
		{"PatchBadID", "PATCH", "/api/v1/admin/activities/0", `{"name":"x"}`, http.StatusBadRequest, "id"},
		{"PatchTooLarge", "PATCH", patch, `{"description":"` + strings.Repeat("d", httpapi.MaxBodyBytes) + `"}`, http.StatusRequestEntityTooLarge, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeService{}
			a, _ := newFakeAPI(t, fake, httpapi.Config{})
			r := a.call(t, tt.method, tt.path, tt.body, "Authorization", "Bearer "+adminToken)
			code := "invalid_request"
			if tt.status == http.StatusRequestEntityTooLarge {
				code = "too_large"
			}
			wantError(t, r, tt.status, code, tt.field)
			if n := fake.calls(); n != 0 {
				t.Fatalf("the service was asked %d times for a body the Server cannot read", n)
			}
		})
	}
}

// TestBodyReachesTheService: a good body reaches the service as sent, the
// members it lacks absent; a join with the Idempotency-Key it came with.
func TestBodyReachesTheService(t *testing.T) {
	t.Run("Create", func(t *testing.T) {
		fake := &fakeService{}
		a, _ := newFakeAPI(t, fake, httpapi.Config{})
		decode[activityJSON](t, a.admin(t, "POST", "/api/v1/admin/activities",
			`{"name":"sale","stock":5,"perUserLimit":null,"beginAt":"2030-01-01T01:00:00+01:00","endAt":"2030-01-02T00:00:00.5Z"}`), http.StatusCreated)
		if len(fake.fields) != 1 {
			t.Fatalf("Create asked %d times, want once", len(fake.fields))
		}
		f := fake.fields[0]
		if f.Name == nil || *f.Name != "sale" || f.Stock == nil || *f.Stock != 5 || f.Description != nil || f.PerUserLimit != nil {
			t.Errorf("fields %+v, want name sale and stock 5, no description, perUserLimit null as absent", f)
		}
		if f.BeginAt == nil || !f.BeginAt.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) ||
			f.EndAt == nil || !f.EndAt.Equal(time.Date(2030, 1, 2, 0, 0, 0, 5e8, time.UTC)) {
			t.Errorf("window %v to %v, want 2030-01-01T00:00:00Z to 2030-01-02T00:00:00.5Z", f.BeginAt, f.EndAt)
		}
	})

	t.Run("Patch", func(t *testing.T) {
		fake := &fakeService{}
		a, _ := newFakeAPI(t, fake, httpapi.Config{})
		decode[activityJSON](t, a.admin(t, "PATCH", "/api/v1/admin/activities/7", `{"stock":9}`), http.StatusOK)
		if len(fake.fields) != 1 {
			t.Fatalf("Update asked %d times, want once", len(fake.fields))
		}
		if f := fake.fields[0]; f.Stock == nil || *f.Stock != 9 || f.Name != nil || f.BeginAt != nil || f.EndAt != nil {
			t.Errorf("fields %+v, want only stock 9", f)
		}
	})

	t.Run("Join", func(t *testing.T) {
		fake := &fakeService{}
		a, _ := newFakeAPI(t, fake, httpapi.Config{})
		// 007 is activity 7, however spelt.
		got := decode[tokenJSON](t, a.call(t, "POST", "/api/v1/activities/007/join", `{"userId":"u-1"}`, "Idempotency-Key", "k-1"), http.StatusOK)
		if len(fake.joins) != 1 || fake.joins[0] != (fakeJoin{activityID: 7, userID: "u-1", key: "k-1"}) {
			t.Fatalf("joins asked %+v, want one of activity 7 for u-1 with key k-1", fake.joins)
		}
		if got.Token != "token-of-u-1" || got.ActivityID != 7 || got.UserID != "u-1" || got.Slot != 1 {
			t.Errorf("answered %+v, want the service's token", got)
		}
	})
}
