package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A lower of the stock of an open sharded activity, above the slots
// claimed, is refused 409 stock_conflict (README: sharded stock is only
// raised), but the answer is the one-shard answer without error.claimed,
// which openapi.yaml promises with stock_conflict: the message says the
// stock cannot go below the slots claimed, and the console shows "— slots
// are claimed already: the stock can go down to — at the lowest".
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
	if r.status == http.StatusOK {
		return
	}
	e := decode[struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Claimed *int64 `json:"claimed"`
		} `json:"error"`
	}](t, r, http.StatusConflict)
	if e.Error.Code != "stock_conflict" {
		t.Fatalf("answer %s", r)
	}
	if e.Error.Claimed == nil && !strings.Contains(e.Error.Message, "raise") {
		t.Errorf("stock_conflict for a lower to 5 with 2 claimed, without error.claimed and without saying why: %s", r.body)
	}
}
