package httpapi_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"sort"
	"testing"

	"seckill/activity"
)

func TestToken(t *testing.T) {
	t.Parallel()
	a := newAPI(t)

	t.Run("LookupGivesSameFields", func(t *testing.T) {
		t.Parallel()
		_, joined := a.joined(t, "u-10293")
		got := decode[tokenJSON](t, a.call(t, "GET", "/api/v1/tokens/"+joined.Token, ""), http.StatusOK)
		if got.Token != joined.Token || got.ActivityID != joined.ActivityID || got.Slot != joined.Slot ||
			got.UserID != joined.UserID || !got.IssuedAt.Equal(joined.IssuedAt) {
			t.Fatalf("token lookup = %+v, want %+v", got, joined)
		}
	})

	t.Run("ForgedIsNotFound", func(t *testing.T) {
		t.Parallel()
		_, joined := a.joined(t, "u-10293")
		if r := a.call(t, "GET", "/api/v1/tokens/"+joined.Token, ""); r.status != http.StatusOK {
			t.Fatalf("the genuine token is not found (%s), so these cases would prove nothing", r)
		}
		raw, err := base64.RawURLEncoding.DecodeString(joined.Token)
		if err != nil || len(raw) != 40 {
			t.Fatalf("token %q is not 40 base64url bytes: %v", joined.Token, err)
		}
		var nonce [12]byte
		copy(nonce[:], raw[12:24])
		other, err := activity.NewSigner(bytes.Repeat([]byte("x"), 32))
		if err != nil {
			t.Fatal(err)
		}
		random := make([]byte, 40)
		_, _ = rand.Read(random)

		forged := map[string]string{
			"Truncated":   joined.Token[:len(joined.Token)-1],
			"Extended":    joined.Token + "A",
			"Random":      base64.RawURLEncoding.EncodeToString(random),
			"ShortString": "not-a-token",
			"OtherSecret": other.Sign(joined.ActivityID, joined.Slot, nonce),
		}
		for i := range joined.Token {
			b := []byte(joined.Token)
			if b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			forged[fmt.Sprintf("AlteredAt%02d", i)] = string(b)
		}
		names := make([]string, 0, len(forged))
		for name := range forged {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			t.Run(name, func(t *testing.T) {
				wantError(t, a.call(t, "GET", "/api/v1/tokens/"+forged[name], ""), http.StatusNotFound, "not_found", "")
			})
		}
	})
}
