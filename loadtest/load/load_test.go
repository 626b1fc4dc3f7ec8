package load

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"seckill/activity/jwtauth"
	"seckill/internal/jwttest"
)

// TestRunSpreadsOverURLs: with three URLs every request goes to one of
// them in turn, so each gets a third of the run, give or take one, and
// every request sent is answered.
func TestRunSpreadsOverURLs(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int64{}
	users := map[string]bool{}
	var urls []string
	for _, name := range []string{"a", "b", "c"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			got[name]++
			users[string(b)] = true
			mu.Unlock()
			_, _ = w.Write([]byte(`{}`))
		}))
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL+"/join")
	}
	r, err := Run(context.Background(), Options{URLs: urls, Conns: 4, Duration: 300 * time.Millisecond, UserPrefix: "u"})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	counts := []int64{got["a"], got["b"], got["c"]}
	if r.Requests < 3 || r.OK != r.Requests || counts[0]+counts[1]+counts[2] != r.Requests {
		t.Fatalf("%d requests, %d answered 200, servers saw %v", r.Requests, r.OK, counts)
	}
	if slices.Max(counts)-slices.Min(counts) > 1 {
		t.Errorf("requests per URL %v: want each within one of the others", counts)
	}
	if int64(len(users)) != r.Requests {
		t.Errorf("%d distinct bodies for %d requests: a userId sent twice", len(users), r.Requests)
	}
}

// TestPickRotates: consecutive request numbers take the URLs in turn.
func TestPickRotates(t *testing.T) {
	urls := []string{"a", "b", "c"}
	var seen []string
	for n := int64(7); n < 13; n++ {
		seen = append(seen, pick(urls, n))
	}
	if want := []string{"b", "c", "a", "b", "c", "a"}; !slices.Equal(seen, want) {
		t.Errorf("pick over 7..12: %q, want %q", seen, want)
	}
	if got := pick([]string{"only"}, 42); got != "only" {
		t.Errorf("pick of one URL: %q", got)
	}
}

// TestRunNeedsURLs: no URL, or an empty one, is a bad option.
func TestRunNeedsURLs(t *testing.T) {
	for _, urls := range [][]string{nil, {"http://x", ""}} {
		if _, err := Run(context.Background(), Options{URLs: urls, Conns: 1, Duration: time.Second}); err == nil {
			t.Errorf("Run with URLs %q: no error", urls)
		}
	}
}

// TestRunSignsJWTs: with a Signer every request carries a bearer JWT that a
// server in jwt mode verifies (jwtauth, on a JWKS file of the secret), whose
// sub is the body's userId.
func TestRunSignsJWTs(t *testing.T) {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	path := filepath.Join(t.TempDir(), "jwks.json")
	jwttest.WriteFile(t, path, jwttest.JWKS(t, jwttest.JWK{Key: secret, KeyID: "load-1", Algorithm: "HS256"}))
	v, err := jwtauth.Load(path, jwtauth.Options{Issuer: "iss-test", Audience: "seckill"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var bad []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ UserID string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		sub, err := v.Subject(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		if err != nil || sub != body.UserID {
			mu.Lock()
			bad = append(bad, fmt.Sprintf("sub %q, body %q: %v", sub, body.UserID, err))
			mu.Unlock()
			w.WriteHeader(http.StatusUnauthorized)
		}
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(srv.Close)
	k := base64.RawURLEncoding.EncodeToString(secret)
	s, err := ParseSecret(k)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), Options{URLs: []string{srv.URL}, Conns: 2, Duration: 200 * time.Millisecond, UserPrefix: "jwt-",
		Signer: &Signer{Secret: s, KeyID: "load-1", Issuer: "iss-test", Audience: "seckill"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests == 0 || r.OK != r.Requests || len(bad) > 0 {
		t.Fatalf("%d requests, %d verified; refused: %v", r.Requests, r.OK, bad[:min(len(bad), 3)])
	}
	if _, err := ParseSecret("not base64!"); err == nil {
		t.Error("ParseSecret took a secret that is not base64url")
	}
}
