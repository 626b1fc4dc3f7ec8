package load

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
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
