package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A lower of the stock of an open sharded activity is refused 409
// stock_conflict with the slots claimed, the lowest the stock may go to
// (the stock itself: it can only be raised) and a message that says so.
func TestShardedLowerStockAnswer(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	begin := time.Now().Add(-time.Minute)
	act := a.create(t, fmt.Sprintf(`{"name":"sharded lower","stock":10,"perUserLimit":1,"shards":2,"beginAt":%q,"endAt":%q}`,
		rfc3339(begin), rfc3339(begin.Add(time.Hour))))
	a.act(t, act.ID, "approve")
	a.act(t, act.ID, "open")
	for i := range 2 {
		decode[tokenJSON](t, a.join(t, act.ID, fmt.Sprintf("u-%d", i)), http.StatusOK)
	}
	r := a.setStock(t, act.ID, 5)
	e := decode[struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Claimed *int64 `json:"claimed"`
			Lowest  *int64 `json:"lowest"`
		} `json:"error"`
	}](t, r, http.StatusConflict)
	if e.Error.Code != "stock_conflict" {
		t.Fatalf("answer %s", r)
	}
	if e.Error.Claimed == nil || *e.Error.Claimed != 2 || e.Error.Lowest == nil || *e.Error.Lowest != 10 ||
		!strings.Contains(e.Error.Message, "only be raised") {
		t.Errorf("stock_conflict for a lower to 5 with 2 claimed: %s, want claimed 2, lowest 10 and why", r.body)
	}
}
