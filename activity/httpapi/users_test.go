package httpapi_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"seckill/activity"
	"seckill/activity/httpapi"
	"seckill/activity/jwtauth"
	"seckill/internal/jwttest"
	"seckill/internal/testenv"
)

// The issuer and audience the JWT-mode Servers of the tests check.
const (
	testIssuer   = "https://login.example.test"
	testAudience = "seckill"
)

// userAPI is a Server of the test's own on the real Redis and MariaDB,
// whose joins take their user as users says (with cfg's limits); in jwt
// mode users.Tokens is a Verifier of a JWKS file of the shared test keys.
func userAPI(t *testing.T, users httpapi.UserAuth, cfg httpapi.Config) *api {
	t.Helper()
	if users.Mode == httpapi.UserFromJWT && users.Tokens == nil {
		users.Tokens = testVerifier(t)
	}
	env := testenv.New(t, testenv.Options{})
	cfg.AdminToken, cfg.Log, cfg.Users = adminToken, testenv.Logger(t), users
	cfg.Staff, cfg.SignInFailures = activity.NewStaffing(env.Repo), noSignInLimit
	return &api{env: env, h: httpapi.New(env.Svc, cfg)}
}

// testVerifier verifies tokens of the shared test keys (oct, RSA and EC)
// from testIssuer for testAudience.
func testVerifier(t testing.TB) *jwtauth.Verifier {
	t.Helper()
	k := jwttest.Shared(t)
	path := filepath.Join(t.TempDir(), "jwks.json")
	jwttest.WriteFile(t, path, jwttest.JWKS(t, k.HSKey(), k.RSAKey(), k.ECKey()))
	v, err := jwtauth.Load(path, jwtauth.Options{Issuer: testIssuer, Audience: testAudience})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// userToken is an HS256 token of sub from testIssuer for testAudience.
func userToken(t testing.TB, sub string) string {
	t.Helper()
	return jwttest.Shared(t).HS256(t, jwttest.Claims(sub, testIssuer, testAudience))
}

// joinAs joins id with body and the header pairs given.
func (a *api) joinAs(t *testing.T, id int64, body string, header ...string) reply {
	t.Helper()
	return a.call(t, "POST", fmt.Sprintf("/api/v1/activities/%d/join", id), body, header...)
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// claimed is the used-slot counter of an activity in Redis.
func (a *api) claimed(t *testing.T, id int64) int64 {
	t.Helper()
	c, _, err := a.env.Store.Counters(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c.Claimed
}

func TestJoinUserFromJWT(t *testing.T) {
	t.Parallel()
	a := userAPI(t, httpapi.UserAuth{Mode: httpapi.UserFromJWT}, httpapi.Config{})
	act := a.inState(t, "open", 100, 1)
	k := jwttest.Shared(t)

	t.Run("JoinsAsSub", func(t *testing.T) {
		for i, tc := range []struct{ name, tok, body string }{
			{"HS256NoBody", userToken(t, "jwt-hs"), ""},
			{"RS256EmptyObject", jwttest.Sign(t, jwt.SigningMethodRS256, k.RSA, jwttest.KidRSA, jwttest.Claims("jwt-rs", testIssuer, testAudience)), "{}"},
			{"ES256SameUserInBody", jwttest.Sign(t, jwt.SigningMethodES256, k.EC, jwttest.KidEC, jwttest.Claims("jwt-es", testIssuer, testAudience)), `{"userId":"jwt-es"}`},
		} {
			before := a.claimed(t, act.ID)
			tok := decode[tokenJSON](t, a.joinAs(t, act.ID, tc.body, bearer(tc.tok)...), http.StatusOK)
			want := []string{"jwt-hs", "jwt-rs", "jwt-es"}[i]
			if tok.UserID != want {
				t.Errorf("%s: joined as %q, want the sub %q", tc.name, tok.UserID, want)
			}
			if got := a.claimed(t, act.ID) - before; got != 1 {
				t.Errorf("%s: %d slots taken, want 1", tc.name, got)
			}
		}
	})

	t.Run("BodyOfAnotherUser", func(t *testing.T) {
		before := a.claimed(t, act.ID)
		r := a.joinAs(t, act.ID, `{"userId":"someone-else"}`, bearer(userToken(t, "jwt-me"))...)
		wantError(t, r, http.StatusBadRequest, "invalid_request", "userId")
		if a.claimed(t, act.ID) != before {
			t.Fatal("a mismatched join took a slot")
		}
	})

	t.Run("NoTokenIsUnauthorized", func(t *testing.T) {
		before := a.claimed(t, act.ID)
		for _, h := range [][]string{nil, {"Authorization", "Basic dTpw"}, {"Authorization", "Bearer"}, {"Authorization", userToken(t, "jwt-x")}} {
			r := a.joinAs(t, act.ID, `{"userId":"jwt-x"}`, h...)
			wantError(t, r, http.StatusUnauthorized, "unauthorized", "")
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q, want a Bearer challenge", r.header.Get("WWW-Authenticate"))
			}
		}
		if a.claimed(t, act.ID) != before {
			t.Fatal("a join without a token took a slot")
		}
		if n := joinCounts(t, a)["unauthorized"]; n != 4 {
			t.Errorf("seckill_joins_total{outcome=\"unauthorized\"} %v, want 4", n)
		}
	})

	// Two Authorization headers: which one would count? Neither.
	t.Run("TwoAuthorizationHeaders", func(t *testing.T) {
		req := fmt.Sprintf("/api/v1/activities/%d/join", act.ID)
		r := a.callMulti(t, "POST", req, "", "Authorization", "Bearer "+userToken(t, "jwt-two-a"), "Authorization", "Bearer "+userToken(t, "jwt-two-b"))
		wantError(t, r, http.StatusUnauthorized, "unauthorized", "")
	})

	// The per-user slot limit is the verified user's: a second join of the
	// same sub is limit_reached, whatever else the request says.
	t.Run("PerUserLimitOfTheSub", func(t *testing.T) {
		tok := userToken(t, "jwt-limit")
		decode[tokenJSON](t, a.joinAs(t, act.ID, "", bearer(tok)...), http.StatusOK)
		wantError(t, a.joinAs(t, act.ID, `{"userId":"jwt-limit"}`, bearer(userToken(t, "jwt-limit"))...), http.StatusConflict, "limit_reached", "")
	})

	// An Idempotency-Key is the verified user's: the same key of another
	// sub is another join.
	t.Run("IdempotencyKeyOfTheSub", func(t *testing.T) {
		first := decode[tokenJSON](t, a.joinAs(t, act.ID, "", append(bearer(userToken(t, "jwt-idem-a")), "Idempotency-Key", "k-1")...), http.StatusOK)
		again := decode[tokenJSON](t, a.joinAs(t, act.ID, "", append(bearer(userToken(t, "jwt-idem-a")), "Idempotency-Key", "k-1")...), http.StatusOK)
		other := decode[tokenJSON](t, a.joinAs(t, act.ID, "", append(bearer(userToken(t, "jwt-idem-b")), "Idempotency-Key", "k-1")...), http.StatusOK)
		if again.Token != first.Token {
			t.Errorf("a retry with the key answered %s, want the first answer %s", again.Token, first.Token)
		}
		if other.Token == first.Token || other.UserID != "jwt-idem-b" {
			t.Errorf("another sub with the same key got %+v, want a token of its own", other)
		}
	})
}

// The per-user rate limit counts the verified user's joins: a bot cannot
// spread them over made-up userIds, and one user's joins do not slow
// another's.
func TestJoinRateLimitOfVerifiedUser(t *testing.T) {
	t.Parallel()
	a := userAPI(t, httpapi.UserAuth{Mode: httpapi.UserFromJWT}, httpapi.Config{PerUser: httpapi.Limit{Rate: 0.001, Burst: 2}})
	act := a.inState(t, "open", 100, 100)
	tok := userToken(t, "jwt-eager")
	codes := map[int]int{}
	for range 5 {
		codes[a.joinAs(t, act.ID, "", bearer(tok)...).status]++
	}
	if codes[http.StatusOK] != 2 || codes[http.StatusTooManyRequests] != 3 {
		t.Fatalf("answers %v, want 2 joins and 3 rate limited", codes)
	}
	if got := a.claimed(t, act.ID); got != 2 {
		t.Fatalf("%d slots taken, want 2", got)
	}
	decode[tokenJSON](t, a.joinAs(t, act.ID, "", bearer(userToken(t, "jwt-calm"))...), http.StatusOK)
}

// TestJoinUserFromTheDefaultHeader: a UserAuth naming no header reads
// X-User-ID, in whatever case the request spells it.
func TestJoinUserFromTheDefaultHeader(t *testing.T) {
	t.Parallel()
	a := userAPI(t, httpapi.UserAuth{Mode: httpapi.UserFromHeader}, httpapi.Config{})
	act := a.inState(t, "open", 100, 1)
	for i, h := range []string{httpapi.DefaultUserHeader, "x-user-id"} {
		user := fmt.Sprintf("dflt-%d", i)
		if tok := decode[tokenJSON](t, a.joinAs(t, act.ID, "", h, user), http.StatusOK); tok.UserID != user {
			t.Fatalf("header %s: joined as %q, want %s", h, tok.UserID, user)
		}
	}
}

func TestJoinUserFromHeader(t *testing.T) {
	t.Parallel()
	a := userAPI(t, httpapi.UserAuth{Mode: httpapi.UserFromHeader, Header: "x-auth-user"}, httpapi.Config{})
	act := a.inState(t, "open", 100, 1)
	const h = "X-Auth-User"

	tok := decode[tokenJSON](t, a.joinAs(t, act.ID, "", h, "hdr-1"), http.StatusOK)
	if tok.UserID != "hdr-1" {
		t.Fatalf("joined as %q, want the header's hdr-1", tok.UserID)
	}
	decode[tokenJSON](t, a.joinAs(t, act.ID, `{"userId":"hdr-2"}`, h, "hdr-2"), http.StatusOK)
	wantError(t, a.joinAs(t, act.ID, `{"userId":"hdr-1"}`, h, "hdr-1"), http.StatusConflict, "limit_reached", "")

	before := a.claimed(t, act.ID)
	wantError(t, a.joinAs(t, act.ID, `{"userId":"hdr-other"}`, h, "hdr-3"), http.StatusBadRequest, "invalid_request", "userId")
	for name, header := range map[string][]string{
		"Missing":         nil,
		"Empty":           {h, ""},
		"NotAUserID":      {h, "u ser"},
		"TheDefaultName":  {httpapi.DefaultUserHeader, "hdr-4"},
		"BearerInsteadOf": bearer(userToken(t, "hdr-5")),
	} {
		r := a.joinAs(t, act.ID, `{"userId":"hdr-4"}`, header...)
		if r.status != http.StatusUnauthorized {
			t.Errorf("%s: %s, want 401", name, r)
		}
		wantError(t, r, http.StatusUnauthorized, "unauthorized", "")
	}
	r := a.callMulti(t, "POST", fmt.Sprintf("/api/v1/activities/%d/join", act.ID), "", h, "hdr-6", h, "hdr-7")
	wantError(t, r, http.StatusUnauthorized, "unauthorized", "")
	if a.claimed(t, act.ID) != before {
		t.Fatal("a join without a valid user header took a slot")
	}
}

// The body mode stays as it was: the userId of the body, no header looked at.
func TestJoinUserFromBody(t *testing.T) {
	t.Parallel()
	a := userAPI(t, httpapi.UserAuth{Mode: httpapi.UserFromBody}, httpapi.Config{})
	act := a.inState(t, "open", 100, 1)
	tok := decode[tokenJSON](t, a.joinAs(t, act.ID, `{"userId":"body-1"}`, httpapi.DefaultUserHeader, "hdr-1"), http.StatusOK)
	if tok.UserID != "body-1" {
		t.Fatalf("joined as %q, want the body's body-1", tok.UserID)
	}
	wantError(t, a.joinAs(t, act.ID, "", bearer(userToken(t, "body-2"))...), http.StatusBadRequest, "invalid_request", "body")
}

// callMulti is call with header pairs added, not set: a name may repeat.
func (a *api) callMulti(t *testing.T, method, path, body string, header ...string) reply {
	t.Helper()
	return a.callWith(t, method, path, body, func(h http.Header) {
		for i := 0; i+1 < len(header); i += 2 {
			h.Add(header[i], header[i+1])
		}
	})
}
