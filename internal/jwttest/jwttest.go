// Package jwttest makes what the tests of user JWTs need: keys generated
// for the test run (never a key kept in the repository), JWKS files of
// them, and signed tokens. For tests only.
package jwttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// Kids of the keys of Keys.
const (
	KidHS  = "hs-1"
	KidRSA = "rsa-1"
	KidEC  = "ec-1"
)

// Keys are one HMAC secret, one RSA and one P-256 EC key pair.
type Keys struct {
	HS  []byte
	RSA *rsa.PrivateKey
	EC  *ecdsa.PrivateKey
}

var (
	once   sync.Once
	shared *Keys
)

// Shared returns the keys of this test process, generated at the first call
// (an RSA key takes a while; every test of the process shares them).
func Shared(t testing.TB) *Keys {
	t.Helper()
	once.Do(func() { shared = Generate(t) })
	return shared
}

// Generate returns new keys.
func Generate(t testing.TB) *Keys {
	t.Helper()
	k := &Keys{HS: make([]byte, 32)}
	_, _ = rand.Read(k.HS)
	var err error
	if k.RSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.EC, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	return k
}

// JWK is one key of a JWKS document: the public part of an RSA or EC key,
// or an HMAC secret.
type JWK = jose.JSONWebKey

// HSKey is the JWK of the HMAC secret, pinned to HS256.
func (k *Keys) HSKey() JWK { return JWK{Key: k.HS, KeyID: KidHS, Algorithm: "HS256", Use: "sig"} }

// RSAKey is the JWK of the RSA public key, without alg.
func (k *Keys) RSAKey() JWK { return JWK{Key: &k.RSA.PublicKey, KeyID: KidRSA, Use: "sig"} }

// ECKey is the JWK of the EC public key, without alg.
func (k *Keys) ECKey() JWK { return JWK{Key: &k.EC.PublicKey, KeyID: KidEC} }

// JWKS returns the JWKS document of keys.
func JWKS(t testing.TB, keys ...JWK) []byte {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// WriteFile writes data to path by a rename over it, as a deployment does,
// so that a reader never sees half a file.
func WriteFile(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// Claims returns the claims of a token of sub valid for an hour, with iss
// and aud when they are not empty.
func Claims(sub, iss, aud string) jwt.MapClaims {
	c := jwt.MapClaims{"sub": sub, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	if iss != "" {
		c["iss"] = iss
	}
	if aud != "" {
		c["aud"] = aud
	}
	return c
}

// With sets claims of c, name then value, and deletes those whose value is
// nil; it returns c.
func With(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

// Sign returns the compact JWT of claims signed with key by method, with
// kid in its header unless kid is empty.
func Sign(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// HS256 returns a token of sub signed with the HMAC secret, kid KidHS.
func (k *Keys) HS256(t testing.TB, claims jwt.Claims) string {
	t.Helper()
	return Sign(t, jwt.SigningMethodHS256, k.HS, KidHS, claims)
}
