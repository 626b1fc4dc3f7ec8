package activity_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"seckill/activity"
)

func newSigner(t *testing.T, fill byte) *activity.Signer {
	t.Helper()
	s, err := activity.NewSigner(bytes.Repeat([]byte{fill}, activity.MinSecretLen))
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	return s
}

func nonce(b byte) [12]byte {
	var n [12]byte
	for i := range n {
		n[i] = b + byte(i)
	}
	return n
}

func TestNewSigner(t *testing.T) {
	t.Run("ShortSecretFails", func(t *testing.T) {
		if _, err := activity.NewSigner(make([]byte, activity.MinSecretLen-1)); err == nil {
			t.Fatal("NewSigner accepted a secret shorter than MinSecretLen")
		}
	})
	t.Run("SecretIsCopied", func(t *testing.T) {
		secret := bytes.Repeat([]byte{7}, activity.MinSecretLen)
		s, err := activity.NewSigner(secret)
		if err != nil {
			t.Fatal(err)
		}
		tok := s.Sign(1, 1, nonce(1))
		secret[0] ^= 0xff
		if _, err := s.Verify(tok); err != nil {
			t.Fatalf("changing the caller's secret slice changed the signer: %v", err)
		}
	})
}

func TestTokenRoundTrip(t *testing.T) {
	s := newSigner(t, 1)
	tests := []struct {
		name       string
		activityID int64
		slot       int64
	}{
		{"SmallNumbers", 1, 1},
		{"TypicalClaim", 42, 17},
		{"LargestStock", 1 << 40, activity.MaxStock},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := nonce(9)
			tok := s.Sign(tt.activityID, tt.slot, n)
			if len(tok) != activity.TokenLen {
				t.Errorf("len(token) = %d, want TokenLen = %d (token %q)", len(tok), activity.TokenLen, tok)
			}
			if enc := base64.RawURLEncoding.EncodedLen(40); activity.TokenLen != enc {
				t.Errorf("TokenLen = %d, but a 40-byte token encodes to %d characters", activity.TokenLen, enc)
			}
			got, err := s.Verify(tok)
			if err != nil {
				t.Fatalf("Verify(Sign(...)) = %v, want the claim back", err)
			}
			want := activity.TokenClaim{ActivityID: tt.activityID, Slot: tt.slot, ClaimID: base64.RawURLEncoding.EncodeToString(n[:])}
			if got != want {
				t.Fatalf("Verify = %+v, want %+v", got, want)
			}
		})
	}
}

func TestTokenUniqueness(t *testing.T) {
	s := newSigner(t, 1)
	t.Run("SameClaimGivesSameToken", func(t *testing.T) {
		if a, b := s.Sign(42, 17, nonce(1)), s.Sign(42, 17, nonce(1)); a != b {
			t.Fatalf("Sign is not deterministic: %q != %q", a, b)
		}
	})
	t.Run("DifferentNonceGivesDifferentToken", func(t *testing.T) {
		if a, b := s.Sign(42, 17, nonce(1)), s.Sign(42, 17, nonce(2)); a == b {
			t.Fatalf("same token %q for two nonces of one slot", a)
		}
	})
	t.Run("DifferentSlotGivesDifferentToken", func(t *testing.T) {
		if a, b := s.Sign(42, 17, nonce(1)), s.Sign(42, 18, nonce(1)); a == b {
			t.Fatalf("same token %q for two slots", a)
		}
	})
}

func TestTokenVerifyRejects(t *testing.T) {
	s := newSigner(t, 1)
	tok := s.Sign(42, 17, nonce(3))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

	t.Run("EveryAlteredCharacterIsNotFound", func(t *testing.T) {
		if _, err := s.Verify(tok); err != nil {
			t.Fatalf("the unaltered token does not verify (%v), so this test would prove nothing", err)
		}
		for i := 0; i < len(tok); i++ {
			for _, c := range []byte(alphabet) {
				if c == tok[i] {
					continue
				}
				bad := []byte(tok)
				bad[i] = c
				if got, err := s.Verify(string(bad)); !errors.Is(err, activity.ErrNotFound) {
					t.Fatalf("Verify(token with position %d changed to %q) = %+v, %v; want ErrNotFound", i, c, got, err)
				}
			}
		}
	})

	other := newSigner(t, 2)
	forged := other.Sign(42, 17, nonce(3))
	if _, err := other.Verify(forged); err != nil {
		t.Fatalf("a token does not verify with its own secret (%v), so OtherSecret would prove nothing", err)
	}
	tests := []struct {
		name  string
		token string
	}{
		{"Empty", ""},
		{"Truncated", tok[:len(tok)-1]},
		{"Extended", tok + "A"},
		{"Padded", tok + "=="},
		{"StdAlphabet", strings.NewReplacer("-", "+", "_", "/").Replace(strings.Repeat("-_", 27))},
		{"NotBase64", strings.Repeat("!", len(tok))},
		{"RandomString", "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQR"},
		{"OtherSecret", forged},
	}
	for _, tt := range tests {
		t.Run(tt.name+"IsNotFound", func(t *testing.T) {
			if got, err := s.Verify(tt.token); !errors.Is(err, activity.ErrNotFound) {
				t.Fatalf("Verify(%q) = %+v, %v; want ErrNotFound", tt.token, got, err)
			}
		})
	}
}
