package activity

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash"
	"sync"
)

// A token is base64url(payload || mac) where payload is the activity ID
// (8 bytes), the slot (4 bytes) and a random claim nonce (12 bytes), and mac
// is the first 16 bytes of HMAC-SHA256(secret, payload). The nonce makes every
// token unique for the activity's whole life, also when a slot number is sold
// again; the MAC makes it impossible to forge without the server secret.
const (
	nonceLen   = 12
	payloadLen = 8 + 4 + nonceLen
	macLen     = 16
	// ClaimIDLen is the length of a claim ID: unpadded base64 of the nonce.
	ClaimIDLen = (nonceLen*8 + 5) / 6
	// TokenLen is the length of a token string: unpadded base64 of 40 bytes.
	TokenLen = ((payloadLen+macLen)*8 + 5) / 6
)

// MinSecretLen is the shortest accepted token secret, in bytes.
const MinSecretLen = 32

// Signer makes and checks slot tokens with a server secret.
type Signer struct {
	key []byte
	// macs are HMACs keyed with key, reset before each use: making one
	// costs more than the MAC of a token.
	macs sync.Pool
}

// NewSigner returns a Signer for secret, which must be at least MinSecretLen
// bytes long.
func NewSigner(secret []byte) (*Signer, error) {
	if len(secret) < MinSecretLen {
		return nil, errors.New("activity: token secret too short")
	}
	s := &Signer{key: append([]byte(nil), secret...)}
	s.macs.New = func() any { return hmac.New(sha256.New, s.key) }
	return s, nil
}

// mac appends the token MAC of payload to b.
func (s *Signer) mac(b, payload []byte) []byte {
	m := s.macs.Get().(hash.Hash)
	m.Reset()
	m.Write(payload)
	var sum [sha256.Size]byte
	b = append(b, m.Sum(sum[:0])[:macLen]...)
	s.macs.Put(m)
	return b
}

// TokenClaim is what a token says about itself once its MAC is verified.
type TokenClaim struct {
	ActivityID int64
	Slot       int64
	ClaimID    string
}

// newClaimID returns a random claim nonce and its string form, which is the
// value of the slot's lock and the claim's identity in the slot store.
func newClaimID() ([nonceLen]byte, string) {
	var n [nonceLen]byte
	_, _ = rand.Read(n[:]) // crypto/rand.Read never fails on supported platforms
	return n, base64.RawURLEncoding.EncodeToString(n[:])
}

// Sign returns the token for a claim.
func (s *Signer) Sign(activityID, slot int64, nonce [nonceLen]byte) string {
	var buf [payloadLen + macLen]byte
	binary.BigEndian.PutUint64(buf[0:8], uint64(activityID))
	binary.BigEndian.PutUint32(buf[8:12], uint32(slot))
	copy(buf[12:payloadLen], nonce[:])
	s.mac(buf[:payloadLen], buf[:payloadLen]) // the MAC goes in after the payload, in buf
	return base64.RawURLEncoding.EncodeToString(buf[:])
}

// signHeld gives participations read back from the slot store their
// tokens; a participation whose claim ID is not a nonce is dropped.
func (s *Signer) signHeld(ps []Participation) []Participation {
	out := ps[:0]
	for _, p := range ps {
		var nonce [nonceLen]byte
		if n, err := base64.RawURLEncoding.Decode(nonce[:], []byte(p.ClaimID)); err != nil || n != nonceLen {
			continue
		}
		p.Token = s.Sign(p.ActivityID, p.Slot, nonce)
		out = append(out, p)
	}
	return out
}

// Verify checks a token's MAC and returns what it says.
// It returns ErrNotFound for anything that is not a token this server signed.
func (s *Signer) Verify(token string) (TokenClaim, error) {
	if len(token) != TokenLen {
		return TokenClaim{}, ErrNotFound
	}
	var buf [payloadLen + macLen]byte
	n, err := base64.RawURLEncoding.Decode(buf[:], []byte(token))
	if err != nil || n != len(buf) {
		return TokenClaim{}, ErrNotFound
	}
	var want [macLen]byte
	if !hmac.Equal(s.mac(want[:0], buf[:payloadLen]), buf[payloadLen:]) {
		return TokenClaim{}, ErrNotFound
	}
	// Re-encoding must give the same string: base64 allows several spellings
	// of the last character, and only the canonical one is a token.
	if base64.RawURLEncoding.EncodeToString(buf[:]) != token {
		return TokenClaim{}, ErrNotFound
	}
	return TokenClaim{
		ActivityID: int64(binary.BigEndian.Uint64(buf[0:8])),
		Slot:       int64(binary.BigEndian.Uint32(buf[8:12])),
		ClaimID:    base64.RawURLEncoding.EncodeToString(buf[12:payloadLen]),
	}, nil
}
