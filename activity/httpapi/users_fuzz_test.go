package httpapi_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"seckill/activity/httpapi"
	"seckill/internal/jwttest"
)

// FuzzJoinAuthorization sends arbitrary Authorization headers to a join in
// jwt mode. Every answer is 200 or 401; a 401 is the error JSON and reaches
// no join; a 200 joins as the sub of a token whose signature checks out by
// hand (HS256, RS256 or ES256 with the key of that kind), whatever
// the parser made of it. The seeds (a good token of each kind, and every
// kind of bad one) run with every go test; `make fuzz` runs it for a while.
func FuzzJoinAuthorization(f *testing.F) {
	k := jwttest.Shared(f)
	fake := &fakeService{}
	a, _ := newFakeAPI(f, fake, httpapi.Config{Users: httpapi.UserAuth{Mode: httpapi.UserFromJWT, Tokens: testVerifier(f)}})

	claims := func(kv ...any) jwt.MapClaims {
		c := jwttest.Claims("u-fuzz", testIssuer, testAudience)
		for i := 0; i+1 < len(kv); i += 2 {
			c[kv[i].(string)] = kv[i+1]
		}
		return c
	}
	hs := k.HS256(f, claims())
	rs := jwttest.Sign(f, jwt.SigningMethodRS256, k.RSA, jwttest.KidRSA, claims())
	parts := strings.Split(hs, ".")
	for _, s := range []string{
		"Bearer " + hs, "bearer " + hs, "BEARER " + rs, "Bearer " + rs,
		"Bearer " + jwttest.Sign(f, jwt.SigningMethodES256, k.EC, jwttest.KidEC, claims()),
		"", "Bearer", "Bearer ", "Bearer  " + hs, "Bearer " + hs + " ", "Basic " + hs, hs, "Bearer\t" + hs,
		"Bearer " + parts[0] + "." + parts[1], "Bearer " + parts[0] + "." + parts[1] + ".", "Bearer ..", "Bearer a.b.c",
		"Bearer " + parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"u-admin","exp":99999999999}`)) + "." + parts[2],
		"Bearer " + jwttest.Sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwttest.KidHS, claims()),
		"Bearer " + jwttest.Sign(f, jwt.SigningMethodRS256, k.RSA, jwttest.KidHS, claims()),
		"Bearer " + jwttest.Sign(f, jwt.SigningMethodHS256, k.HS, jwttest.KidRSA, claims()),
		"Bearer " + k.HS256(f, claims("exp", time.Now().Add(-time.Hour).Unix())),
		"Bearer " + k.HS256(f, claims("nbf", time.Now().Add(time.Hour).Unix())),
		"Bearer " + k.HS256(f, claims("iss", "https://evil.test")),
		"Bearer " + k.HS256(f, claims("aud", []string{"a", "b"})),
		"Bearer " + k.HS256(f, claims("sub", "u ok")),
		"Bearer " + k.HS256(f, claims("sub", 42)),
		"Bearer " + k.HS256(f, claims("exp", "tomorrow")),
		"Bearer " + base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":{"x":1}}`)) + "." + parts[1] + "." + parts[2],
		"Bearer " + base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","crit":["exp"]}`)) + "." + parts[1] + "." + parts[2],
		"Bearer " + strings.Repeat("A", 4000) + "." + strings.Repeat("B", 4000) + "." + strings.Repeat("C", 4000),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, auth string) {
		before := len(fake.joins)
		r := a.call(t, "POST", "/api/v1/activities/7/join", "", "Authorization", auth)
		after := len(fake.joins)
		switch r.status {
		case http.StatusUnauthorized:
			if after != before {
				t.Fatalf("Authorization %q: 401, and a join was asked for", auth)
			}
			if !strings.Contains(string(r.body), `"code":"unauthorized"`) {
				t.Fatalf("Authorization %q: 401 with body %s", auth, r.body)
			}
		case http.StatusOK:
			if after != before+1 {
				t.Fatalf("Authorization %q: 200 after %d joins", auth, after-before)
			}
			sub, ok := checkByHand(k, auth)
			if !ok {
				t.Fatalf("Authorization %q: 200, but its signature does not check out by hand", auth)
			}
			if got := fake.joins[after-1].userID; got != sub {
				t.Fatalf("Authorization %q: joined as %q, the token's sub is %q", auth, got, sub)
			}
		default:
			t.Fatalf("Authorization %q: %s, want 200 or 401", auth, r)
		}
	})
}

// checkByHand verifies the token of a "Bearer <token>" header without the
// JWT library: an HS256 signature with the oct key, an RS256 one with the RSA
// key or an ES256 one with the EC key, over the token's first two parts as sent, and returns its sub.
func checkByHand(k *jwttest.Keys, auth string) (string, bool) {
	_, tok, _ := strings.Cut(auth, " ")
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", false
	}
	var header struct{ Alg string }
	var payload struct {
		Sub string `json:"sub"`
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	pb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &header) != nil || json.Unmarshal(pb, &payload) != nil {
		return "", false
	}
	signed := []byte(parts[0] + "." + parts[1])
	switch header.Alg {
	case "HS256":
		m := hmac.New(sha256.New, k.HS)
		m.Write(signed)
		return payload.Sub, hmac.Equal(m.Sum(nil), sig)
	case "RS256":
		sum := sha256.Sum256(signed)
		return payload.Sub, rsa.VerifyPKCS1v15(&k.RSA.PublicKey, crypto.SHA256, sum[:], sig) == nil
	case "ES256":
		sum := sha256.Sum256(signed)
		if len(sig) != 64 {
			return "", false
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return payload.Sub, ecdsa.Verify(&k.EC.PublicKey, sum[:], r, s)
	}
	return "", false
}
