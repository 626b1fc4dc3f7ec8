package httpapi_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestShards: an activity answers its shards on create, read and listing,
// 1 unless the create asks for more; a draft's shards may be patched, an
// approved activity's not, even along with autoOpen.
func TestShards(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	begin := time.Now().Add(time.Hour)
	body := func(name, shards string) string {
		return fmt.Sprintf(`{"name":%q,"stock":10%s,"beginAt":%q,"endAt":%q}`, name, shards, rfc3339(begin), rfc3339(begin.Add(time.Hour)))
	}

	plain := a.create(t, body("plain", ""))
	if plain.Shards != 1 || a.get(t, plain.ID).Shards != 1 {
		t.Fatalf("an activity created without shards has %d, want 1", plain.Shards)
	}
	sharded := a.create(t, body("sharded", `,"shards":3`))
	if sharded.Shards != 3 || a.get(t, sharded.ID).Shards != 3 {
		t.Fatalf("an activity created with 3 shards has %d", sharded.Shards)
	}
	type listJSON struct {
		Activities []activityJSON `json:"activities"`
	}
	list := decode[listJSON](t, a.admin(t, "GET", "/api/v1/admin/activities", ""), http.StatusOK)
	shards := map[int64]int{}
	for _, x := range list.Activities {
		shards[x.ID] = x.Shards
	}
	if shards[plain.ID] != 1 || shards[sharded.ID] != 3 {
		t.Fatalf("listed shards %v, want %d: 1 and %d: 3", shards, plain.ID, sharded.ID)
	}

	path := fmt.Sprintf("/api/v1/admin/activities/%d", sharded.ID)
	if got := decode[activityJSON](t, a.admin(t, "PATCH", path, `{"shards":64}`), http.StatusOK); got.Shards != 64 || got.Stock != 10 {
		t.Fatalf("patched draft %+v, want 64 shards and the stock kept", got)
	}
	a.act(t, sharded.ID, "approve")
	for _, patch := range []string{`{"shards":2}`, `{"shards":2,"autoOpen":true}`, `{"stock":2}`} {
		wantError(t, a.admin(t, "PATCH", path, patch), http.StatusConflict, "invalid_state", "")
	}
	if got := a.get(t, sharded.ID); got.Shards != 64 || got.State != "approved" {
		t.Fatalf("after refused patches %+v, want 64 shards, approved", got)
	}
}
