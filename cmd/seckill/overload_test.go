package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestOverload fires far more joins at once than the limit of joins in
// flight, on a small stock: every answer is a token, sold_out, or a 503 with
// Retry-After (shed, or slots_in_flight at the very end) that took nothing; the admin API, token checks and probes
// answer all through the overload; and the stock sells exactly.
func TestOverload(t *testing.T) {
	cfg := testConfig(t)
	cfg.JoinLimit, cfg.MaxJoinsInFlight, cfg.JoinQueueTimeout = joinLimitFixed, 4, time.Millisecond
	// Longer than any wait below: a slot a shed join had taken would still
	// be in flight at the end, not given back by the reaper.
	cfg.Lease = 5 * time.Minute
	app := startApp(t, cfg)
	base := app.URL()
	const stock = 30
	id := openActivity(t, app, stock, 1)

	var (
		mu      sync.Mutex
		answers []joinAnswer
		bad     []string // answers that are none of those expected
		shed    int      // 503 answers
		seq     atomic.Int64
		wg      sync.WaitGroup
	)
	stop := make(chan struct{})
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := seq.Add(1)
				// With a key every join goes to Redis, also once the
				// activity is known sold out: the overload lasts.
				a, h := joinKeyed(base, id, fmt.Sprintf("ov%d", i), fmt.Sprintf("key-%d", i))
				mu.Lock()
				answers = append(answers, a)
				switch {
				case a.status == http.StatusOK || a.status == http.StatusConflict && a.code == "sold_out":
				case a.shed && a.code == "unavailable" && h.Get("Retry-After") != "":
					shed++
				case a.status == http.StatusServiceUnavailable && a.code == "slots_in_flight" && h.Get("Retry-After") != "":
					// The last slots held by admitted joins in flight.
				default:
					bad = append(bad, fmt.Sprintf("%s: %d %s (Retry-After %q)", a.user, a.status, a.code, h.Get("Retry-After")))
				}
				mu.Unlock()
			}
		}()
	}
	stopped := false
	stopStorm := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopStorm()

	eventually(t, 30*time.Second, "joins shed", func() bool { return shedTotal(t, base) > 0 })
	t.Run("OthersAnswerDuringTheOverload", func(t *testing.T) {
		// A round of the other endpoints, repeated until joins were shed
		// while it ran: each of them answered in the middle of the overload.
		eventually(t, 30*time.Second, "a round of the other endpoints amid shed joins", func() bool {
			before := shedTotal(t, base)
			var a struct{ Stats stats }
			if code := send(t, app, "GET", fmt.Sprintf("/api/v1/admin/activities/%d", id), "", &a); code != http.StatusOK {
				t.Fatalf("admin read during the overload: %d", code)
			}
			if code := send(t, app, "GET", "/api/v1/admin/activities?state=open", "", nil); code != http.StatusOK {
				t.Fatalf("admin list during the overload: %d", code)
			}
			for _, path := range []string{"/healthz", "/readyz", fmt.Sprintf("/api/v1/activities/%d", id)} {
				if code := getStatus(t, base+path); code != http.StatusOK {
					t.Fatalf("GET %s during the overload: %d", path, code)
				}
			}
			mu.Lock()
			var token string
			for _, a := range answers {
				if a.status == http.StatusOK {
					token = a.token
					break
				}
			}
			mu.Unlock()
			if token != "" {
				if code := tokenStatus(base, token); code != http.StatusOK {
					t.Fatalf("token check during the overload: %d", code)
				}
			}
			return shedTotal(t, base) > before
		})
	})
	stopStorm()

	got := tokens(t, answers)
	if len(bad) > 0 {
		t.Fatalf("%d of %d answers neither a token, sold_out nor a 503 with Retry-After: %s", len(bad), len(answers), firstFew(bad))
	}
	if n := shedTotal(t, base); n != float64(shed) {
		t.Fatalf("%d joins answered 503 busy, %v counted shed", shed, n)
	}
	t.Logf("%d joins: %d tokens, %d shed", len(answers), len(got), shed)
	if len(got) > stock {
		t.Fatalf("%d tokens, stock %d: oversold", len(got), stock)
	}
	// Nothing taken by a shed join: once settled, what is claimed is what
	// was answered with a token, and nothing is left in flight (the lease
	// is too long for the reaper to have hidden a stranded slot).
	converged(t, app, id, stock, int64(len(got)))
	if len(got) < stock {
		sellOut(t, base, app, id, stock, got)
	}
	converged(t, app, id, stock, stock)
	checkTokens(t, base, got)
}

// shedTotal is seckill_joins_shed_total over its reasons.
func shedTotal(t *testing.T, base string) float64 {
	t.Helper()
	var sum float64
	for _, line := range strings.Split(scrape(t, base), "\n") {
		if strings.HasPrefix(line, "seckill_joins_shed_total{") {
			var v float64
			if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
				sum += v
			}
		}
	}
	return sum
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := joinClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
