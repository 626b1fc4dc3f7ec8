package load

import (
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Signer signs the user JWTs a load against a server in jwt mode
// (SECKILL_USER_AUTH=jwt) carries: HS256 with the secret of an oct key of
// the server's JWKS file, sub the request's userId.
type Signer struct {
	// Secret is the oct key's bytes (its "k", decoded: ParseSecret).
	Secret []byte
	// KeyID is the key's kid; none in the token when empty.
	KeyID string
	// Issuer and Audience are the token's iss and aud when not empty.
	Issuer, Audience string
	// TTL is how long a token is valid; an hour when zero.
	TTL time.Duration
}

// Sign returns the compact JWT of userID, valid from a minute ago (clocks
// disagree) for TTL. It returns an error only when the secret is empty.
func (s *Signer) Sign(userID string) (string, error) {
	if len(s.Secret) == 0 {
		return "", errors.New("load: a JWT signer needs a secret")
	}
	ttl := s.TTL
	if ttl <= 0 {
		ttl = time.Hour
	}
	now := time.Now()
	c := jwt.RegisteredClaims{Subject: userID, Issuer: s.Issuer, IssuedAt: jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)), ExpiresAt: jwt.NewNumericDate(now.Add(ttl))}
	if s.Audience != "" {
		c.Audience = jwt.ClaimStrings{s.Audience}
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	if s.KeyID != "" {
		t.Header["kid"] = s.KeyID
	}
	return t.SignedString(s.Secret)
}

// ParseSecret decodes an oct key's "k" as the JWKS file holds it:
// base64url, with or without padding.
func ParseSecret(k string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(k), "="))
	if err != nil || len(b) == 0 {
		return nil, errors.New(`load: the JWT secret must be the oct key's "k" of the JWKS file, base64url`)
	}
	return b, nil
}
