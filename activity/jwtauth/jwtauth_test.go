package jwtauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"seckill/activity/jwtauth"
	"seckill/internal/jwttest"
	"seckill/internal/testenv"
)

const (
	iss = "https://login.example.test"
	aud = "seckill"
)

// load writes keys to a file of the test's own and loads it.
func load(t *testing.T, opts jwtauth.Options, keys ...jwttest.JWK) (*jwtauth.Verifier, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	jwttest.WriteFile(t, path, jwttest.JWKS(t, keys...))
	v, err := jwtauth.Load(path, opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return v, path
}

// claims are those of a token of u-1 from iss for aud, valid for an hour.
func claims() jwt.MapClaims { return jwttest.Claims("u-1", iss, aud) }

func TestSubject(t *testing.T) {
	k := jwttest.Shared(t)
	other := jwttest.Generate(t)
	// An oct key without alg puts HS384 and HS512 among the set's
	// algorithms: the pinned key must still refuse them.
	anyHS := other.HS
	v, _ := load(t, jwtauth.Options{Issuer: iss, Audience: aud}, k.HSKey(), k.RSAKey(), k.ECKey(),
		jwttest.JWK{Key: anyHS, KeyID: "hs-any"})
	now := time.Now()
	in := func(d time.Duration) int64 { return now.Add(d).Unix() }
	sign := jwttest.Sign

	valid := map[string]string{
		"HS256":                sign(t, jwt.SigningMethodHS256, k.HS, jwttest.KidHS, claims()),
		"RS256":                sign(t, jwt.SigningMethodRS256, k.RSA, jwttest.KidRSA, claims()),
		"PS384":                sign(t, jwt.SigningMethodPS384, k.RSA, jwttest.KidRSA, claims()),
		"ES256":                sign(t, jwt.SigningMethodES256, k.EC, jwttest.KidEC, claims()),
		"HS512OfUnpinnedKey":   sign(t, jwt.SigningMethodHS512, anyHS, "hs-any", claims()),
		"AudienceInAList":      sign(t, jwt.SigningMethodHS256, k.HS, jwttest.KidHS, jwttest.With(claims(), "aud", []string{"other", aud})),
		"ExpiredWithinLeeway":  sign(t, jwt.SigningMethodHS256, k.HS, jwttest.KidHS, jwttest.With(claims(), "exp", in(-10*time.Second))),
		"NotBeforeWithinLeewy": sign(t, jwt.SigningMethodHS256, k.HS, jwttest.KidHS, jwttest.With(claims(), "nbf", in(10*time.Second))),
	}
	for name, tok := range valid {
		t.Run("Valid"+name, func(t *testing.T) {
			sub, err := v.Subject(tok)
			if err != nil || sub != "u-1" {
				t.Fatalf("Subject = %q, %v; want u-1", sub, err)
			}
		})
	}

	hs := sign(t, jwt.SigningMethodHS256, k.HS, jwttest.KidHS, claims())
	parts := strings.Split(hs, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"u-2","iss":"`+iss+`","aud":"`+aud+`","exp":`+
		jwt.NewNumericDate(now.Add(time.Hour)).String()+`}`)) + "." + parts[2]
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwttest.KidHS, claims())
	// An RS256 token for the oct key, signed with the RSA key or with the
	// oct key's bytes taken as HMAC: neither may pass.
	rsForHS := sign(t, jwt.SigningMethodRS256, k.RSA, jwttest.KidHS, claims())
	invalid := map[string]string{
		"Empty":              "",
		"Garbage":            "not-a-jwt",
		"TwoParts":           parts[0] + "." + parts[1],
		"Expired":            sign(t, jwt.SigningMethodHS256, k.HS, jwttest.KidHS, jwttest.With(claims(), "exp", in(-time.Minute))),
		"NoExpiry":           sign(t, jwt.SigningMethodHS256, k.HS, jwttest.KidHS, jwttest.With(claims(), "exp", nil)),
		"NotYetValid":        sign(t, jwt.SigningMethodHS256, k.HS, jwttest.KidHS, jwttest.With(claims(), "nbf", in(time.Minute))),
		"WrongIssuer":        sign(t, jwt.SigningMethodHS256, k.HS, jwttest.KidHS, jwttest.With(claims(), "iss", "https://evil.test")),
		"NoIssuer":           sign(t, jwt.SigningMethodHS256, k.HS, jwttest.KidHS, jwttest.With(claims(), "iss", nil)),
		"WrongAudience":      sign(t, jwt.SigningMethodHS256, k.HS, jwttest.KidHS, jwttest.With(claims(), "aud", "shop")),
		"NoSubject":          sign(t, jwt.SigningMethodHS256, k.HS, jwttest.KidHS, jwttest.With(claims(), "sub", nil)),
		"WrongHMACKey":       sign(t, jwt.SigningMethodHS256, jwttest.Generate(t).HS, jwttest.KidHS, claims()),
		"WrongRSAKey":        sign(t, jwt.SigningMethodRS256, other.RSA, jwttest.KidRSA, claims()),
		"WrongECKey":         sign(t, jwt.SigningMethodES256, other.EC, jwttest.KidEC, claims()),
		"Tampered":           tampered,
		"AlgNone":            none,
		"AlgNoneUnsigned":    strings.TrimSuffix(none, ".") + ".",
		"RS256ForHS256Key":   rsForHS,
		"HS256ForRSAKey":     sign(t, jwt.SigningMethodHS256, k.HS, jwttest.KidRSA, claims()),
		"HS512ForPinnedHS":   sign(t, jwt.SigningMethodHS512, k.HS, jwttest.KidHS, claims()),
		"ES384ForP256Key":    sign(t, jwt.SigningMethodES384, mustEC(t, elliptic.P384()), jwttest.KidEC, claims()),
		"UnknownKid":         sign(t, jwt.SigningMethodHS256, k.HS, "hs-9", claims()),
		"NoKidOfManyKeys":    sign(t, jwt.SigningMethodHS256, k.HS, "", claims()),
		"SignatureStripped":  parts[0] + "." + parts[1] + ".",
		"SignatureOfAnother": parts[0] + "." + parts[1] + "." + strings.Split(sign(t, jwt.SigningMethodHS256, k.HS, jwttest.KidHS, jwttest.With(claims(), "sub", "u-2")), ".")[2],
	}
	// A kid that is a number, not a string.
	numeric := jwt.NewWithClaims(jwt.SigningMethodHS256, claims())
	numeric.Header["kid"] = 1
	invalid["NumericKid"], _ = numeric.SignedString(k.HS)
	// An extension that must be understood, which this verifier does not.
	crit := jwt.NewWithClaims(jwt.SigningMethodHS256, claims())
	crit.Header["kid"], crit.Header["crit"], crit.Header["x-must"] = jwttest.KidHS, []string{"x-must"}, true
	invalid["CritHeader"], _ = crit.SignedString(k.HS)
	// The classic confusion: HS256 keyed with the RSA key's public PEM.
	der, err := x509.MarshalPKIXPublicKey(&k.RSA.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	invalid["HS256KeyedWithRSAPublicPEM"] = sign(t, jwt.SigningMethodHS256,
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), jwttest.KidRSA, claims())
	// Well signed, but longer than any user's token need be.
	invalid["TooLong"] = sign(t, jwt.SigningMethodHS256, k.HS, jwttest.KidHS,
		jwttest.With(claims(), "pad", strings.Repeat("x", jwtauth.MaxTokenBytes)))
	for name, tok := range invalid {
		t.Run(name, func(t *testing.T) {
			sub, err := v.Subject(tok)
			if !errors.Is(err, jwtauth.ErrInvalidToken) {
				t.Fatalf("Subject = %q, %v; want ErrInvalidToken", sub, err)
			}
		})
	}
}

func mustEC(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Without issuer and audience configured, neither is asked for; a set of
// one key takes a token without kid.
func TestSubjectSingleKeyNoChecks(t *testing.T) {
	k := jwttest.Shared(t)
	v, _ := load(t, jwtauth.Options{}, k.RSAKey())
	tok := jwttest.Sign(t, jwt.SigningMethodRS256, k.RSA, "", jwttest.Claims("u-7", "", ""))
	if sub, err := v.Subject(tok); err != nil || sub != "u-7" {
		t.Fatalf("Subject = %q, %v; want u-7", sub, err)
	}
	// The set's only key still checks a kid that is not its own.
	tok = jwttest.Sign(t, jwt.SigningMethodRS256, k.RSA, "rsa-2", jwttest.Claims("u-7", "", ""))
	if _, err := v.Subject(tok); !errors.Is(err, jwtauth.ErrInvalidToken) {
		t.Fatalf("a kid of no key: %v, want ErrInvalidToken", err)
	}
	// And an HMAC token signed with the RSA public key's bytes: no.
	tok = jwttest.Sign(t, jwt.SigningMethodHS256, k.RSA.N.Bytes(), "", jwttest.Claims("u-7", "", ""))
	if _, err := v.Subject(tok); !errors.Is(err, jwtauth.ErrInvalidToken) {
		t.Fatalf("HS256 against an RSA key: %v, want ErrInvalidToken", err)
	}
}

func TestParseKeySetRejects(t *testing.T) {
	k := jwttest.Shared(t)
	short := jwttest.JWK{Key: make([]byte, 16), KeyID: "short"}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string]string{
		"NotJSON":           "keys: []",
		"Empty":             ``,
		"NoKeys":            `{"keys":[]}`,
		"NotASet":           `{"kty":"oct","k":"` + base64.RawURLEncoding.EncodeToString(k.HS) + `"}`,
		"TrailingData":      string(jwttest.JWKS(t, k.HSKey())) + `{}`,
		"UnknownKty":        `{"keys":[{"kty":"XYZ","kid":"a"}]}`,
		"OKP":               `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`,
		"ShortOct":          string(jwttest.JWKS(t, short)),
		"SmallRSA":          string(jwttest.JWKS(t, jwttest.JWK{Key: &small.PublicKey, KeyID: "small"})),
		"DuplicateKid":      string(jwttest.JWKS(t, k.HSKey(), jwttest.JWK{Key: &k.RSA.PublicKey, KeyID: jwttest.KidHS})),
		"MissingKidOfTwo":   string(jwttest.JWKS(t, k.HSKey(), jwttest.JWK{Key: &k.RSA.PublicKey})),
		"AlgOfAnotherKind":  string(jwttest.JWKS(t, jwttest.JWK{Key: &k.RSA.PublicKey, KeyID: "r", Algorithm: "HS256"})),
		"ECAlgOfOtherCurve": string(jwttest.JWKS(t, jwttest.JWK{Key: &k.EC.PublicKey, KeyID: "e", Algorithm: "ES384"})),
		"UseEnc":            string(jwttest.JWKS(t, jwttest.JWK{Key: &k.RSA.PublicKey, KeyID: "r", Use: "enc"})),
		"AlgNone":           `{"keys":[{"kty":"oct","kid":"a","alg":"none","k":"` + base64.RawURLEncoding.EncodeToString(k.HS) + `"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			if s, err := jwtauth.ParseKeySet([]byte(doc)); !errors.Is(err, jwtauth.ErrKeySet) {
				t.Fatalf("ParseKeySet = %v, %v; want ErrKeySet", s, err)
			}
		})
	}
	t.Run("Accepted", func(t *testing.T) {
		priv := jwttest.JWK{Key: k.RSA, KeyID: "with-private-part"} // only its public part verifies
		s, err := jwtauth.ParseKeySet(jwttest.JWKS(t, k.HSKey(), k.RSAKey(), k.ECKey(), priv))
		if err != nil {
			t.Fatal(err)
		}
		want := "ES256 HS256 PS256 PS384 PS512 RS256 RS384 RS512"
		if s.Len() != 4 || strings.Join(s.Algorithms(), " ") != want {
			t.Fatalf("%d keys, algorithms %v; want 4 keys, %s", s.Len(), s.Algorithms(), want)
		}
	})
}

// TestReload: a rewritten file is taken at the next Reload; a file that is
// no good key set, or gone, is an error and the keys before stay.
func TestReload(t *testing.T) {
	k := jwttest.Shared(t)
	next := jwttest.Generate(t)
	v, path := load(t, jwtauth.Options{}, k.HSKey())
	old := k.HS256(t, jwttest.Claims("u-1", "", ""))
	fresh := jwttest.Sign(t, jwt.SigningMethodHS256, next.HS, "hs-2", jwttest.Claims("u-2", "", ""))
	subject := func(tok string) string { s, _ := v.Subject(tok); return s }

	if changed, err := v.Reload(); changed || err != nil {
		t.Fatalf("Reload of the same file = %v, %v; want unchanged", changed, err)
	}
	jwttest.WriteFile(t, path, jwttest.JWKS(t, jwttest.JWK{Key: next.HS, KeyID: "hs-2"}))
	if changed, err := v.Reload(); !changed || err != nil {
		t.Fatalf("Reload of a new key set = %v, %v", changed, err)
	}
	if subject(fresh) != "u-2" || subject(old) != "" {
		t.Fatalf("after rotation: new key's token %q, old key's %q; want u-2 and refused", subject(fresh), subject(old))
	}
	for name, data := range map[string][]byte{"Truncated": []byte(`{"keys":[{"kty":"oct",`), "NoKeys": []byte(`{"keys":[]}`)} {
		jwttest.WriteFile(t, path, data)
		if _, err := v.Reload(); !errors.Is(err, jwtauth.ErrKeySet) {
			t.Fatalf("%s: Reload = %v, want ErrKeySet", name, err)
		}
		if subject(fresh) != "u-2" {
			t.Fatalf("%s: the last good keys were dropped", name)
		}
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Reload(); err == nil || subject(fresh) != "u-2" {
		t.Fatalf("file gone: Reload = %v, keys kept %v", err, subject(fresh) == "u-2")
	}
	if _, err := jwtauth.Load(path, jwtauth.Options{}); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Load of a missing file = %v, want an error naming it", err)
	}
}

// TestWatch: the watcher takes a changed file by itself and reads it on
// demand; a bad file is logged and the keys stay.
func TestWatch(t *testing.T) {
	k := jwttest.Shared(t)
	next := jwttest.Generate(t)
	v, path := load(t, jwtauth.Options{}, k.HSKey())
	var log testenv.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	reload := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		v.Watch(ctx, time.Hour, reload, slog.New(slog.NewTextHandler(&log, nil)))
	}()
	t.Cleanup(func() { cancel(); <-done })

	fresh := jwttest.Sign(t, jwt.SigningMethodHS256, next.HS, "hs-2", jwttest.Claims("u-2", "", ""))
	jwttest.WriteFile(t, path, jwttest.JWKS(t, jwttest.JWK{Key: next.HS, KeyID: "hs-2"}))
	if _, err := v.Subject(fresh); err == nil {
		t.Fatal("the new key is in use before any reload")
	}
	reload <- struct{}{}
	waitFor(t, "the new key", func() bool { _, err := v.Subject(fresh); return err == nil })
	jwttest.WriteFile(t, path, []byte("garbage"))
	reload <- struct{}{}
	waitFor(t, "the bad file logged", func() bool { return strings.Contains(log.String(), "keys loaded before stay in use") })
	if _, err := v.Subject(fresh); err != nil {
		t.Fatalf("after a bad file: %v; want the last good keys", err)
	}
	// A SIGHUP on a file still bad says so again; it is not "unchanged".
	reload <- struct{}{}
	waitFor(t, "the bad file logged again", func() bool { return strings.Count(log.String(), "keys loaded before stay in use") == 2 })

	// The polling alone, with no signal: a bad file, and a missing one,
	// are logged once, not at every look.
	var polled testenv.Buffer
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan struct{})
	go func() {
		defer close(done2)
		v.Watch(ctx2, 5*time.Millisecond, nil, slog.New(slog.NewTextHandler(&polled, nil)))
	}()
	defer func() { cancel2(); <-done2 }()
	jwttest.WriteFile(t, path, jwttest.JWKS(t, k.HSKey()))
	old := k.HS256(t, jwttest.Claims("u-1", "", ""))
	waitFor(t, "the rewritten file polled", func() bool { _, err := v.Subject(old); return err == nil })
	jwttest.WriteFile(t, path, []byte(`{"keys":[]}`))
	waitFor(t, "the bad file polled", func() bool { return strings.Contains(polled.String(), "no keys") })
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the missing file polled", func() bool { return strings.Contains(polled.String(), "no such file") })
	time.Sleep(50 * time.Millisecond) // ten looks more
	if n := strings.Count(polled.String(), "level=ERROR"); n != 2 {
		t.Errorf("%d errors logged, want 2 (the bad file, the missing file, once each):\n%s", n, polled.String())
	}
	if _, err := v.Subject(old); err != nil {
		t.Fatalf("after a bad and a missing file: %v; want the last good keys", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The cost of a join's verify: go test -run '^$' -bench Subject ./activity/jwtauth
func BenchmarkSubject(b *testing.B) {
	k := jwttest.Shared(b)
	path := filepath.Join(b.TempDir(), "jwks.json")
	jwttest.WriteFile(b, path, jwttest.JWKS(b, k.HSKey(), k.RSAKey(), k.ECKey()))
	v, err := jwtauth.Load(path, jwtauth.Options{Issuer: iss, Audience: aud})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		tok  string
	}{
		{"HS256", jwttest.Sign(b, jwt.SigningMethodHS256, k.HS, jwttest.KidHS, claims())},
		{"RS256", jwttest.Sign(b, jwt.SigningMethodRS256, k.RSA, jwttest.KidRSA, claims())},
		{"ES256", jwttest.Sign(b, jwt.SigningMethodES256, k.EC, jwttest.KidEC, claims())},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Subject(c.tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
