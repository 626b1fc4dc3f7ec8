package main

// Tests of issue 19 over HTTP on a running App: who joins in each mode of
// SECKILL_USER_AUTH, the JWKS file rotated by rewriting it and on SIGHUP,
// and the storm invariants in jwt mode.

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"seckill/internal/jwttest"
	"seckill/internal/testenv"
)

const (
	jwtIssuer   = "https://login.example.test"
	jwtAudience = "seckill"
)

// jwtConfig is kafkaConfig in jwt mode on a JWKS file of the test's own,
// holding keys, read for a change every check (an hour when zero).
func jwtConfig(t *testing.T, b *broker, check time.Duration, keys ...jwttest.JWK) (Config, string) {
	t.Helper()
	cfg := kafkaConfig(t, b)
	path := filepath.Join(t.TempDir(), "jwks.json")
	jwttest.WriteFile(t, path, jwttest.JWKS(t, keys...))
	cfg.UserAuth, cfg.JWTKeys, cfg.JWTIssuer, cfg.JWTAudience = "jwt", path, jwtIssuer, jwtAudience
	cfg.jwtKeysCheckEvery = check
	if check == 0 {
		cfg.jwtKeysCheckEvery = time.Hour
	}
	return cfg, path
}

// userJWT is an HS256 token of sub, signed with secret under kid, from
// jwtIssuer for jwtAudience, with claims changed by kv (a nil value
// deletes the claim).
func userJWT(t testing.TB, secret []byte, kid, sub string, kv ...any) string {
	t.Helper()
	c := jwttest.With(jwttest.Claims(sub, jwtIssuer, jwtAudience), kv...)
	return jwttest.Sign(t, jwt.SigningMethodHS256, secret, kid, c)
}

// joinWith joins over HTTP with body and the header pairs given; status 0
// means the request failed.
func joinWith(base string, id int64, body string, header ...string) joinAnswer {
	req, err := http.NewRequest("POST", fmt.Sprintf("%s/api/v1/activities/%d/join", base, id), strings.NewReader(body))
	if err != nil {
		return joinAnswer{}
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := joinClient.Do(req)
	if err != nil {
		return joinAnswer{at: time.Now()}
	}
	defer resp.Body.Close()
	var b struct {
		Token, UserID string
		Slot          int64
		Error         struct{ Code, Message string }
	}
	_ = jsonDecode(resp.Body, &b)
	return joinAnswer{status: resp.StatusCode, code: b.Error.Code, token: b.Token, slot: b.Slot, user: b.UserID,
		at: time.Now(), shed: isShed(resp.StatusCode, b.Error.Message)}
}

// joinBearer joins with the bearer token tok and no body, sent again while
// it is shed or told slots_in_flight, as crowd does.
func joinBearer(base string, id int64, tok string) joinAnswer {
	for {
		a := joinWith(base, id, "", "Authorization", "Bearer "+tok)
		if !a.shed && a.code != "slots_in_flight" {
			return a
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestUserAuthJWT(t *testing.T) {
	t.Parallel()
	k := jwttest.Shared(t)
	other := jwttest.Generate(t)
	cfg, path := jwtConfig(t, newBroker(t), 20*time.Millisecond, k.HSKey(), k.RSAKey())
	app, logs := startAppLogged(t, cfg)
	id := openActivity(t, app, 50, 1)
	base := app.URL()
	hs := func(sub string, kv ...any) string { return userJWT(t, k.HS, jwttest.KidHS, sub, kv...) }

	t.Run("ValidTokenJoinsAsSub", func(t *testing.T) {
		if a := joinBearer(base, id, hs("jwt-alice")); a.status != http.StatusOK || a.user != "jwt-alice" {
			t.Fatalf("join: %d %s as %q, want 200 as jwt-alice", a.status, a.code, a.user)
		}
		rs := jwttest.Sign(t, jwt.SigningMethodRS256, k.RSA, jwttest.KidRSA, jwttest.Claims("jwt-bob", jwtIssuer, jwtAudience))
		if a := joinWith(base, id, `{"userId":"jwt-bob"}`, "Authorization", "Bearer "+rs); a.status != http.StatusOK || a.user != "jwt-bob" {
			t.Fatalf("RS256 join: %d %s as %q, want 200 as jwt-bob", a.status, a.code, a.user)
		}
	})

	good := hs("jwt-carol")
	parts := strings.Split(good, ".")
	forged := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"sub":"jwt-mallory","iss":%q,"aud":%q,"exp":%d}`,
		jwtIssuer, jwtAudience, time.Now().Add(time.Hour).Unix())))
	refused := []struct{ name, auth string }{
		{"Missing", ""},
		{"Expired", "Bearer " + hs("jwt-carol", "exp", time.Now().Add(-5*time.Minute).Unix())},
		{"NotYetValid", "Bearer " + hs("jwt-carol", "nbf", time.Now().Add(5*time.Minute).Unix())},
		{"WrongIssuer", "Bearer " + hs("jwt-carol", "iss", "https://evil.test")},
		{"WrongAudience", "Bearer " + hs("jwt-carol", "aud", "shop")},
		{"WrongKey", "Bearer " + userJWT(t, other.HS, jwttest.KidHS, "jwt-carol")},
		{"TamperedPayload", "Bearer " + parts[0] + "." + forged + "." + parts[2]},
		{"AlgNone", "Bearer " + jwttest.Sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwttest.KidHS, jwttest.Claims("jwt-carol", jwtIssuer, jwtAudience))},
		{"RS256ForHS256Key", "Bearer " + jwttest.Sign(t, jwt.SigningMethodRS256, k.RSA, jwttest.KidHS, jwttest.Claims("jwt-carol", jwtIssuer, jwtAudience))},
		{"Malformed", "Bearer " + parts[0] + "." + parts[1]},
	}
	t.Run("RefusedTakeNothing", func(t *testing.T) {
		before := activityStats(t, app, id)
		for _, r := range refused {
			var h []string
			if r.auth != "" {
				h = []string{"Authorization", r.auth}
			}
			a := joinWith(base, id, `{"userId":"jwt-carol"}`, h...)
			if a.status != http.StatusUnauthorized || a.code != "unauthorized" {
				t.Errorf("%s: %d %s, want 401 unauthorized", r.name, a.status, a.code)
			}
		}
		if after := activityStats(t, app, id); after.Claimed != before.Claimed || after.Issued != before.Issued {
			t.Fatalf("refused joins took slots: claimed %d → %d", before.Claimed, after.Claimed)
		}
	})

	t.Run("BodyOfAnotherUser", func(t *testing.T) {
		before := activityStats(t, app, id)
		a := joinWith(base, id, `{"userId":"jwt-dave"}`, "Authorization", "Bearer "+good)
		if a.status != http.StatusBadRequest || a.code != "invalid_request" {
			t.Fatalf("mismatch: %d %s, want 400 invalid_request", a.status, a.code)
		}
		if after := activityStats(t, app, id); after.Claimed != before.Claimed {
			t.Fatal("a mismatched join took a slot")
		}
	})

	// Keys rotate by rewriting the file: the new key's tokens join, the
	// old key's are refused; a broken file keeps the last good keys.
	t.Run("RotateByRewritingTheFile", func(t *testing.T) {
		next := jwttest.Generate(t)
		fresh := userJWT(t, next.HS, "hs-2", "jwt-erin")
		if a := joinWith(base, id, "", "Authorization", "Bearer "+fresh); a.status != http.StatusUnauthorized {
			t.Fatalf("a token of a key not yet in the file: %d, want 401", a.status)
		}
		jwttest.WriteFile(t, path, jwttest.JWKS(t, jwttest.JWK{Key: next.HS, KeyID: "hs-2", Algorithm: "HS256"}))
		eventually(t, 5*time.Second, "the rewritten JWKS file in use", func() bool {
			return joinWith(base, id, `{"userId":"x x"}`, "Authorization", "Bearer "+fresh).status == http.StatusBadRequest
		})
		if a := joinBearer(base, id, fresh); a.status != http.StatusOK || a.user != "jwt-erin" {
			t.Fatalf("the new key's token: %d %s, want 200 as jwt-erin", a.status, a.code)
		}
		if a := joinBearer(base, id, hs("jwt-frank")); a.status != http.StatusUnauthorized {
			t.Fatalf("the old key's token after rotation: %d, want 401", a.status)
		}

		jwttest.WriteFile(t, path, []byte(`{"keys":[{"kty":"oct"`))
		eventually(t, 5*time.Second, "the broken file logged", func() bool {
			return strings.Contains(logs.String(), "JWKS file not loaded; the keys loaded before stay in use")
		})
		if a := joinBearer(base, id, userJWT(t, next.HS, "hs-2", "jwt-grace")); a.status != http.StatusOK {
			t.Fatalf("after a broken file: %d %s, want 200 with the last good keys", a.status, a.code)
		}
	})
}

// TestUserAuthJWTReloadOnSIGHUP: with the file's polling out of the way, a
// rewritten file is in use after SIGHUP, and not before.
func TestUserAuthJWTReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	k := jwttest.Shared(t)
	cfg, path := jwtConfig(t, newBroker(t), 0, k.HSKey())
	app, logs := startAppLogged(t, cfg)
	id := openActivity(t, app, 10, 1)
	next := jwttest.Generate(t)
	fresh := userJWT(t, next.HS, "hs-2", "hup-1")

	jwttest.WriteFile(t, path, jwttest.JWKS(t, k.HSKey(), jwttest.JWK{Key: next.HS, KeyID: "hs-2"}))
	time.Sleep(100 * time.Millisecond)
	if a := joinBearer(app.URL(), id, fresh); a.status != http.StatusUnauthorized {
		t.Fatalf("before SIGHUP: %d, want 401 (the file is polled hourly here)", a.status)
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the JWKS file read on SIGHUP", func() bool {
		return strings.Contains(logs.String(), "JWKS file reloaded")
	})
	if a := joinBearer(app.URL(), id, fresh); a.status != http.StatusOK || a.user != "hup-1" {
		t.Fatalf("after SIGHUP: %d %s, want 200 as hup-1", a.status, a.code)
	}
}

// TestUserAuthHeader: in header mode the gateway's header names the user.
func TestUserAuthHeader(t *testing.T) {
	t.Parallel()
	cfg := kafkaConfig(t, newBroker(t))
	cfg.UserAuth, cfg.UserHeader = "header", "X-Gateway-User"
	app, logs := startAppLogged(t, cfg)
	id := openActivity(t, app, 10, 1)
	if a := joinWith(app.URL(), id, "", "X-Gateway-User", "gw-1"); a.status != http.StatusOK || a.user != "gw-1" {
		t.Fatalf("join: %d %s as %q, want 200 as gw-1", a.status, a.code, a.user)
	}
	if a := joinWith(app.URL(), id, `{"userId":"gw-2"}`); a.status != http.StatusUnauthorized {
		t.Fatalf("without the header: %d, want 401", a.status)
	}
	if a := joinWith(app.URL(), id, `{"userId":"gw-3"}`, "X-Gateway-User", "gw-4"); a.status != http.StatusBadRequest {
		t.Fatalf("body of another user: %d, want 400", a.status)
	}
	if !strings.Contains(logs.String(), "strips the callers' own, and is the only way to reach the service") || strings.Contains(logs.String(), "anyone can join as anyone") {
		t.Errorf("start-up log does not warn that only the gateway may reach the service, or warns as in body mode:\n%s", logs)
	}
}

// TestUserAuthStartUp: the body mode warns at start; a jwt mode whose file
// is missing or bad does not start, and says which setting to fix.
func TestUserAuthStartUp(t *testing.T) {
	t.Parallel()
	_, logs := startAppLogged(t, testConfig(t))
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "SECKILL_USER_AUTH is body: a join's user is the userId of its body, so anyone can join as anyone") {
		t.Errorf("no warning of body mode at start:\n%s", logs)
	}
	for name, data := range map[string][]byte{"Missing": nil, "Bad": []byte(`{"keys":[]}`)} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.UserAuth, cfg.JWTKeys = "jwt", filepath.Join(t.TempDir(), "jwks.json")
			if data != nil {
				jwttest.WriteFile(t, cfg.JWTKeys, data)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			app, err := NewApp(ctx, cfg, testenv.Logger(t))
			if err == nil {
				app.Close()
				t.Fatal("NewApp started without usable keys")
			}
			if msg := err.Error(); !strings.Contains(msg, "SECKILL_JWT_KEYS") || !strings.Contains(msg, cfg.JWTKeys) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming SECKILL_JWT_KEYS and the file", msg)
			}
		})
	}
}

// TestJWTStorm: the storm invariants in jwt mode. 600 users, each with a
// token of its own and each joining twice at once, for a stock of 100 with
// a limit of one a user: exactly 100 tokens, no slot twice, no user with
// two, every token valid, MySQL converged.
func TestJWTStorm(t *testing.T) {
	t.Parallel()
	const stock, crowdN = 100, 600
	k := jwttest.Shared(t)
	cfg, _ := jwtConfig(t, newBroker(t), 0, k.HSKey())
	app := startApp(t, cfg)
	id := openActivity(t, app, stock, 1)
	toks := make([]string, crowdN)
	for i := range toks {
		toks[i] = userJWT(t, k.HS, jwttest.KidHS, fmt.Sprintf("storm-%d", i))
	}
	answers := make([]joinAnswer, 2*crowdN)
	inParallel(len(answers), 200, func(i int) { answers[i] = joinBearer(app.URL(), id, toks[i%crowdN]) })
	perUser := map[string]int{}
	for i, a := range answers {
		switch {
		case a.status == http.StatusOK:
			if want := fmt.Sprintf("storm-%d", i%crowdN); a.user != want {
				t.Fatalf("a token of %s answered for %q", want, a.user)
			}
			perUser[a.user]++
		case a.code != "sold_out" && a.code != "limit_reached":
			t.Fatalf("join: %d %s, want 200, sold_out or limit_reached", a.status, a.code)
		}
	}
	got := tokens(t, answers)
	if len(got) != stock {
		t.Fatalf("%d tokens, want %d", len(got), stock)
	}
	for u, n := range perUser {
		if n > 1 {
			t.Errorf("user %q holds %d tokens, want at most 1", u, n)
		}
	}
	converged(t, app, id, stock, stock)
	checkTokens(t, app.URL(), got)
}
