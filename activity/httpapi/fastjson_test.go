package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"seckill/activity"
)

// FuzzFastJoinBody: whatever body the fast path reads, decode reads the same
// userId from it without an error; and the fast path takes the usual join
// bodies.
func FuzzFastJoinBody(f *testing.F) {
	for _, s := range []string{
		`{"userId":"u-10293"}`, ` { "userId" : "a.b_c-D9" } ` + "\n", `{"userId":""}`, `{"userId":"u1","userId":"u2"}`,
		`{"userid":"u1"}`, `{"userId":"u\u0031"}`, `{"userId":"u1"} {}`, `{"userId":1}`, `{"userId":"u1",}`, `[{"userId":"u1"}]`,
		`{"userId":"ü"}`, `{"userId":"u1"`, `{"userId":"u1"}x`, "\ufeff" + `{"userId":"u1"}`, `{"userId":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		u, ok := fastJoinBody(body)
		if !ok {
			return
		}
		var req joinRequest
		if err := decodeBody(body, &req); err != nil {
			t.Fatalf("fast path read %q from %q, decode refuses it: %v", u, body, err)
		}
		if req.UserID == nil || *req.UserID != u {
			t.Fatalf("fast path read %q from %q, decode %v", u, body, req.UserID)
		}
	})
}

func TestFastJoinBody(t *testing.T) {
	for body, want := range map[string]string{
		`{"userId":"u-10293"}`:                         "u-10293",
		" {\t\"userId\"\r\n:  \"A.b_9\" }\n":           "A.b_9",
		`{"userId":""}`:                                "",
		`{"userId":"` + strings.Repeat("x", 65) + `"}`: strings.Repeat("x", 65),
	} {
		if got, ok := fastJoinBody([]byte(body)); !ok || got != want {
			t.Errorf("fastJoinBody(%q) = %q, %v; want %q", body, got, ok, want)
		}
	}
	for _, body := range []string{``, `{}`, `{"userId":"u1","x":1}`, `{"userId":"u 1"}`, `{"userId":"u\"1"}`,
		`{"userId":"u1"}}`, `{"userId":"u1"} 1`, `{"userID":"u1"}`, `{"userId" "u1"}`, `{"userId":"u1"`} {
		if got, ok := fastJoinBody([]byte(body)); ok {
			t.Errorf("fastJoinBody(%q) = %q, want it left to decode", body, got)
		}
	}
}

// appendToken writes what encoding/json writes of a tokenResponse.
func TestAppendToken(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	for _, p := range []activity.Participation{
		{Token: "AAAAAAAAACoAAAAR", ActivityID: 42, Slot: 17, UserID: "u-10293", IssuedAt: time.Date(2026, 12, 3, 6, 7, 8, 123e6, time.UTC)},
		{Token: "t", ActivityID: 1, Slot: 1, UserID: "u", IssuedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Token: "t", ActivityID: 9e15, Slot: 10_000_000, UserID: "x", IssuedAt: time.Date(2026, 1, 1, 0, 0, 0, 100e6, cet)},
		{Token: `a"b\c<d>&é` + "\u2028\x01", ActivityID: -1, Slot: 0, UserID: "<script>", IssuedAt: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)},
		{},
	} {
		want, err := json.Marshal(newTokenResponse(&p))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendToken(nil, &p); string(got) != string(want) {
			t.Errorf("appendToken = %s\nencoding/json  %s", got, want)
		}
	}
}
