// Package jwtauth verifies the JWTs users join with: the signature against
// the keys of a JWKS file (oct, RSA and EC keys, chosen by kid), the issuer
// and audience when configured, and expiry and not-before with a small
// leeway. The file is read again on demand (SIGHUP) and when it changes; a
// file that does not read as a good key set leaves the last good keys in
// place.
//
// The tokens are parsed and checked by github.com/golang-jwt/jwt/v5, the
// key set by github.com/go-jose/go-jose/v4: both are well kept and have
// been fuzzed and audited for years, which a hand-written parser of base64,
// JSON and big-integer key material would not have been. go-jose only reads
// the file (on a reload, never on a join); the join path is golang-jwt's.
package jwtauth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// ErrInvalidToken is wrapped by every error Subject returns: the token is
// missing, malformed, expired or not yet valid, of another issuer or
// audience, signed by no key of the set or with an algorithm its key does
// not allow.
var ErrInvalidToken = errors.New("jwtauth: invalid token")

// ErrKeySet is wrapped by the errors of a key set that cannot be used.
var ErrKeySet = errors.New("jwtauth: unusable key set")

// DefaultLeeway is how far the clocks of the token's issuer and of this
// service may disagree: a token is taken until DefaultLeeway after its exp
// and from DefaultLeeway before its nbf. Thirty seconds covers instances
// whose NTP has drifted (the design's fault model lets clocks disagree)
// while keeping an expired token's life short.
const DefaultLeeway = 30 * time.Second

// MinHMACKeyBytes is the shortest oct key accepted: RFC 7518 §3.2 asks a
// key of at least the hash's size, 256 bits for HS256.
const MinHMACKeyBytes = 32

// MinRSABits is the smallest RSA modulus accepted.
const MinRSABits = 2048

// Options configures a Verifier.
type Options struct {
	// Issuer and Audience, when not empty, must be the token's iss and one
	// of its aud.
	Issuer, Audience string
	// Leeway is DefaultLeeway when zero.
	Leeway time.Duration
	// Now is time.Now when nil (tests set it).
	Now func() time.Time
}

// The algorithms of each kind of key, strongest last. An EC key allows the
// one algorithm of its curve.
var (
	hmacAlgs = []string{"HS256", "HS384", "HS512"}
	rsaAlgs  = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	ecAlgs   = map[string]string{"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
)

// key is one verification key of a set and the algorithms it allows.
type key struct {
	id   string
	algs []string
	key  any // []byte, *rsa.PublicKey or *ecdsa.PublicKey
}

// KeySet is a parsed, checked JWKS: keys by kid.
type KeySet struct {
	byID map[string]*key
	only *key     // the key of a set of one, for tokens without kid
	algs []string // every algorithm a key of the set allows
}

// Len returns the number of keys in the set.
func (s *KeySet) Len() int { return len(s.byID) }

// Algorithms returns the algorithms the keys of the set allow, sorted.
func (s *KeySet) Algorithms() []string { return slices.Clone(s.algs) }

// ParseKeySet reads a JWKS document: {"keys": [...]} of oct (HS256/384/512,
// at least MinHMACKeyBytes), RSA (RS*/PS*, at least MinRSABits) and EC
// (P-256/384/521, ES256/384/512) keys, each with a kid distinct from the
// others' (a set of one key may leave it out), a "use" of "sig" or none, and
// an "alg", when present, that the key's kind allows: it pins the key to
// that algorithm. Private members are ignored: only the public part of an
// RSA or EC key verifies. It returns an error wrapping ErrKeySet for
// anything else, or for a set without keys.
func ParseKeySet(data []byte) (*KeySet, error) {
	// go-jose reads each key; unknown top-level members and a key of a kind
	// go-jose does not know are errors of its own.
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: not a JWKS document: %v", ErrKeySet, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the JWKS document", ErrKeySet)
	}
	if len(doc.Keys) == 0 {
		return nil, fmt.Errorf(`%w: no keys (want {"keys": [...]})`, ErrKeySet)
	}
	s := &KeySet{byID: make(map[string]*key, len(doc.Keys))}
	for i, raw := range doc.Keys {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("%w: key %d: %v", ErrKeySet, i, err)
		}
		k, err := newKey(jwk)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d (kid %q): %v", ErrKeySet, i, jwk.KeyID, err)
		}
		if _, dup := s.byID[k.id]; dup {
			return nil, fmt.Errorf("%w: kid %q is given to two keys", ErrKeySet, k.id)
		}
		if k.id == "" && len(doc.Keys) > 1 {
			return nil, fmt.Errorf("%w: key %d has no kid; only a set of one key may leave it out", ErrKeySet, i)
		}
		s.byID[k.id] = k
		for _, a := range k.algs {
			if !slices.Contains(s.algs, a) {
				s.algs = append(s.algs, a)
			}
		}
	}
	if len(s.byID) == 1 {
		for _, k := range s.byID {
			s.only = k
		}
	}
	slices.Sort(s.algs)
	return s, nil
}

// newKey checks one key and the algorithms it allows.
func newKey(jwk jose.JSONWebKey) (*key, error) {
	if jwk.Use != "" && jwk.Use != "sig" {
		return nil, fmt.Errorf(`"use" is %q: only "sig" keys verify signatures`, jwk.Use)
	}
	k := &key{id: jwk.KeyID}
	switch pub := jwk.Public().Key.(type) {
	case nil:
		// Public() of a symmetric key has no key: it is oct.
		b, ok := jwk.Key.([]byte)
		if !ok {
			return nil, fmt.Errorf("unsupported key type %T: want oct, RSA or EC", jwk.Key)
		}
		if len(b) < MinHMACKeyBytes {
			return nil, fmt.Errorf("oct key of %d bytes: at least %d are needed", len(b), MinHMACKeyBytes)
		}
		k.key, k.algs = bytes.Clone(b), hmacAlgs
	case *rsa.PublicKey:
		if pub.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("RSA key of %d bits: at least %d are needed", pub.N.BitLen(), MinRSABits)
		}
		k.key, k.algs = pub, rsaAlgs
	case *ecdsa.PublicKey:
		alg, ok := ecAlgs[curveName(pub.Curve)]
		if !ok {
			return nil, errors.New("EC key on an unsupported curve: want P-256, P-384 or P-521")
		}
		k.key, k.algs = pub, []string{alg}
	default:
		return nil, fmt.Errorf("unsupported key type %T: want oct, RSA or EC", pub)
	}
	if jwk.Algorithm != "" {
		if !slices.Contains(k.algs, jwk.Algorithm) {
			return nil, fmt.Errorf("alg %q does not fit the key (it allows %v)", jwk.Algorithm, k.algs)
		}
		k.algs = []string{jwk.Algorithm}
	}
	return k, nil
}

func curveName(c elliptic.Curve) string {
	if c == nil || c.Params() == nil {
		return ""
	}
	return c.Params().Name
}

// Verifier verifies tokens against the last good key set of a JWKS file.
// It is safe for concurrent use.
type Verifier struct {
	path  string
	state atomic.Pointer[verifierState]
	opts  []jwt.ParserOption // the checks of the claims, the same for every key set

	mu sync.Mutex // serialises reloads
	// good is the hash of the file whose keys are in use, seen of the last
	// file read, good or not: a bad file is reported once by the polling.
	good, seen [sha256.Size]byte
}

// Load reads the JWKS file at path and returns a Verifier over its keys. It
// returns an error naming the file when it cannot be read or is no good key
// set (ErrKeySet).
func Load(path string, opts Options) (*Verifier, error) {
	if opts.Leeway == 0 {
		opts.Leeway = DefaultLeeway
	}
	vopts := []jwt.ParserOption{jwt.WithLeeway(opts.Leeway), jwt.WithExpirationRequired()}
	if opts.Issuer != "" {
		vopts = append(vopts, jwt.WithIssuer(opts.Issuer))
	}
	if opts.Audience != "" {
		vopts = append(vopts, jwt.WithAudience(opts.Audience))
	}
	if opts.Now != nil {
		vopts = append(vopts, jwt.WithTimeFunc(opts.Now))
	}
	v := &Verifier{path: path, opts: vopts}
	if _, err := v.reload(true); err != nil {
		return nil, err
	}
	return v, nil
}

// verifierState is a key set and the parser of its tokens.
type verifierState struct {
	keys *KeySet
	// parser refuses an alg that no key of the set allows before a key is
	// looked up (jwt.WithValidMethods: alg none above all); keyFor then
	// holds each key to its own algorithms.
	parser *jwt.Parser
}

// unreadable stands for the hash of a file that could not be read.
var unreadable = [sha256.Size]byte{0: 1}

// Keys returns the key set in use.
func (v *Verifier) Keys() *KeySet { return v.state.Load().keys }

// Reload reads the file again. A file that cannot be read or is no good key
// set is an error and leaves the keys in use unchanged. changed reports
// whether the file's content differs from that of the keys in use (and,
// without an error, is now in use).
func (v *Verifier) Reload() (changed bool, err error) { return v.reload(true) }

// reload is Reload; unless forced, a file as it was at the last read, good
// or bad, is left alone: the polling reports a bad file once.
func (v *Verifier) reload(forced bool) (changed bool, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	data, err := os.ReadFile(v.path)
	if err != nil {
		// Reported once by the polling too, as a bad file is.
		changed, v.seen = v.seen != unreadable, unreadable
		return changed, fmt.Errorf("JWKS file %s: %w", v.path, err)
	}
	sum := sha256.Sum256(data)
	first := v.state.Load() == nil
	if !first && (sum == v.good || !forced && sum == v.seen) {
		return false, nil
	}
	v.seen = sum
	s, err := ParseKeySet(data)
	if err != nil {
		return true, fmt.Errorf("JWKS file %s: %w", v.path, err)
	}
	opts := append(slices.Clip(v.opts), jwt.WithValidMethods(s.algs))
	v.state.Store(&verifierState{keys: s, parser: jwt.NewParser(opts...)})
	v.good = sum
	return true, nil
}

// Watch reads the file every interval and whenever reload receives, until
// ctx ends, and logs each change of keys and each bad file (the keys in use
// stay). A file is read whole and compared by content: a rewrite in place, a
// rename over it and a Kubernetes ConfigMap's symlink swap are all seen.
func (v *Verifier) Watch(ctx context.Context, interval time.Duration, reload <-chan struct{}, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		forced := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-reload:
			forced = true
		}
		changed, err := v.reload(forced)
		switch {
		case err != nil && (changed || forced):
			log.Error("JWKS file not loaded; the keys loaded before stay in use", "err", err)
		case changed:
			log.Info("JWKS file reloaded", "path", v.path, "keys", v.Keys().Len())
		case forced:
			log.Info("JWKS file read again on SIGHUP: unchanged", "path", v.path, "keys", v.Keys().Len())
		}
	}
}

// MaxTokenBytes is the longest token Subject reads: a user's JWT is a few
// hundred bytes.
const MaxTokenBytes = 4 << 10

// Subject verifies token (the compact JWT, without "Bearer ") and returns
// its sub. It returns an error wrapping ErrInvalidToken when the token is
// not valid now, or when it has no sub.
func (v *Verifier) Subject(token string) (string, error) {
	if len(token) > MaxTokenBytes {
		// Refused before anything is decoded: the claims of an unverified
		// token are parsed before its signature is checked.
		return "", fmt.Errorf("%w: over %d bytes", ErrInvalidToken, MaxTokenBytes)
	}
	st := v.state.Load()
	var claims jwt.RegisteredClaims
	if _, err := st.parser.ParseWithClaims(token, &claims, st.keys.keyFor); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if claims.Subject == "" {
		return "", fmt.Errorf("%w: no sub", ErrInvalidToken)
	}
	return claims.Subject, nil
}

// keyFor is the key of a token's kid, or of the set's only key when the
// token has none, provided the key allows the token's alg.
func (s *KeySet) keyFor(t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		// No extension is understood here, so none that must be can be
		// honoured (RFC 7515 §4.1.11).
		return nil, errors.New("a crit header names extensions this verifier does not understand")
	}
	var k *key
	switch kid, ok := t.Header["kid"]; {
	case !ok:
		if k = s.only; k == nil {
			return nil, errors.New("no kid, and the key set has more than one key")
		}
	default:
		id, _ := kid.(string)
		if k = s.byID[id]; k == nil || !isString(kid) {
			return nil, fmt.Errorf("no key of kid %v", kid)
		}
	}
	if !slices.Contains(k.algs, t.Method.Alg()) {
		return nil, fmt.Errorf("key %q does not allow %s", k.id, t.Method.Alg())
	}
	return k.key, nil
}

func isString(v any) bool { _, ok := v.(string); return ok }
