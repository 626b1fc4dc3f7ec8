package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"seckill/activity/httpapi"
)

func TestJoin(t *testing.T) {
	t.Parallel()
	a := newAPI(t)

	t.Run("JoinGivesToken", func(t *testing.T) {
		t.Parallel()
		open := a.inState(t, "open", 3, 1)
		before := time.Now().UTC().Truncate(time.Millisecond)
		r := a.join(t, open.ID, "u-10293")
		after := time.Now().UTC()
		joined := decode[tokenJSON](t, r, http.StatusOK)

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

	t.Run("TokenIsRecordedBeforeItIsAnswered", func(t *testing.T) {
		t.Parallel()
		_, joined := a.joined(t, "u-10293")
		var rows int
		if err := a.env.DB.Get(&rows, "SELECT COUNT(*) FROM participations WHERE token = ? AND activity_id = ? AND slot = ?",
			joined.Token, joined.ActivityID, joined.Slot); err != nil || rows != 1 {
			t.Fatalf("%d participation rows for the token (%v), want 1", rows, err)
		}
	})

	t.Run("NotOpen", func(t *testing.T) {
		t.Parallel()
		for _, state := range []string{"draft", "approved", "refused", "closed"} {
			act := a.inState(t, state, 4, 1)
			wantError(t, a.join(t, act.ID, "u-1"), http.StatusConflict, "not_open", "")
		}
	})

	t.Run("ClosedStopsJoins", func(t *testing.T) {
		t.Parallel()
		act := a.inState(t, "open", 4, 1)
		decode[tokenJSON](t, a.join(t, act.ID, "early"), http.StatusOK)
		a.act(t, act.ID, "close")
		wantError(t, a.join(t, act.ID, "late"), http.StatusConflict, "not_open", "")
		if st := a.get(t, act.ID).Stats; st.Claimed != 1 {
			t.Fatalf("claimed %d after close, want 1", st.Claimed)
		}
	})

	t.Run("OutsideWindowIsNotOpen", func(t *testing.T) {
		t.Parallel()
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
		t.Parallel()
		wantError(t, a.join(t, 987654321, "u-1"), http.StatusNotFound, "not_found", "")
	})

	t.Run("SoldOut", func(t *testing.T) {
		t.Parallel()
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
		t.Parallel()
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
		t.Parallel()
		act := a.inState(t, "open", 10, 1)
		body := `{"userId":"padded"}`
		body += strings.Repeat(" ", httpapi.MaxBodyBytes-len(body))
		r := a.call(t, "POST", fmt.Sprintf("/api/v1/activities/%d/join", act.ID), body)
		decode[tokenJSON](t, r, http.StatusOK)
		wantError(t, a.call(t, "POST", fmt.Sprintf("/api/v1/activities/%d/join", act.ID), body+" "), http.StatusRequestEntityTooLarge, "too_large", "")
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
