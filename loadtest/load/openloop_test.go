package load

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// arrivalLog is a server that answers 200 and notes when each userId came.
type arrivalLog struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (a *arrivalLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	var body struct {
		UserID string `json:"userId"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	a.mu.Lock()
	a.seen[body.UserID] = now
	a.mu.Unlock()
	_, _ = w.Write([]byte(`{}`))
}

// TestRunBurstSchedule: Rate × Duration arrivals, each a fresh user, none of
// them sent before its due time start + i/Rate (the userIds are numbered in
// arrival order), so they are spread over the duration, not sent at once.
func TestRunBurstSchedule(t *testing.T) {
	log := &arrivalLog{seen: map[string]time.Time{}}
	srv := httptest.NewServer(log)
	t.Cleanup(srv.Close)
	const rate, dur = 400, 500 * time.Millisecond
	before := time.Now()
	r, err := RunBurst(context.Background(), Burst{URLs: []string{srv.URL}, Rate: rate, Duration: dur, UserPrefix: "sched-"})
	if err != nil {
		t.Fatal(err)
	}
	const want = 200 // rate × duration
	if r.Sent != want || r.Dropped != 0 || r.OK != want || r.AllLatency.TotalCount() != want || r.OKLatency.TotalCount() != want {
		t.Fatalf("sent %d, dropped %d, ok %d, latencies %d/%d: want %d sent and answered 200",
			r.Sent, r.Dropped, r.OK, r.OKLatency.TotalCount(), r.AllLatency.TotalCount(), want)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.seen) != want {
		t.Fatalf("the server saw %d distinct users, want %d", len(log.seen), want)
	}
	first := int64(-1)
	for u := range log.seen {
		n, err := strconv.ParseInt(strings.TrimPrefix(u, "sched-"), 10, 64)
		if err != nil {
			t.Fatalf("userId %q: %v", u, err)
		}
		if first < 0 || n < first {
			first = n
		}
	}
	for u, at := range log.seen {
		n, _ := strconv.ParseInt(strings.TrimPrefix(u, "sched-"), 10, 64)
		i := n - first
		if due := before.Add(time.Duration(i) * time.Second / rate); at.Before(due) {
			t.Errorf("arrival %d came %v before its due time", i, due.Sub(at))
		}
	}
}

// TestRunBurstNoCoordinatedOmission: a server that answers nothing for the
// first 200 ms of the burst. Every arrival due in that window waits for its
// end, so the latencies counted from the due times have a tail as long as
// the stall: arrival i is answered no sooner than stall − i/Rate after it
// was due, whether the server got it during the stall or after. A closed-
// loop generator (Run) hides it: its few connections wait once each, and
// it sends nothing while they wait.
func TestRunBurstNoCoordinatedOmission(t *testing.T) {
	const stall = 200 * time.Millisecond
	var once sync.Once
	var until time.Time
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		once.Do(func() { until = time.Now().Add(stall) })
		end := until
		mu.Unlock()
		time.Sleep(time.Until(end))
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(srv.Close)
	// 1000/s for 1 s: arrivals 0 to 20 (2.1 %) wait at least 180 ms each.
	r, err := RunBurst(context.Background(), Burst{URLs: []string{srv.URL}, Rate: 1000, Duration: time.Second, UserPrefix: "stall-"})
	if err != nil {
		t.Fatal(err)
	}
	s := r.OKLatency.Summary()
	if r.OK != 1000 || s.P99 < 180*time.Millisecond || s.Max < stall {
		t.Errorf("ok %d, p99 %v, max %v: want 1000 answers, p99 ≥ 180ms and max ≥ %v", r.OK, s.P99, s.Max, stall)
	}
	t.Logf("open loop: p50 %v p99 %v max %v, %d in progress at most, sent at most %v late", s.P50, s.P99, s.Max, r.MaxOutstanding, r.MaxLag)

	// For contrast only (not asserted): the closed loop on a fresh stall.
	mu.Lock()
	once = sync.Once{}
	mu.Unlock()
	c, err := Run(context.Background(), Options{URLs: []string{srv.URL}, Conns: 4, Duration: time.Second, UserPrefix: "stall-closed-"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("closed loop, 4 connections: %d requests, p50 %v p99 %v", c.Requests, c.Percentile(0.5), c.Percentile(0.99))
}

// TestRunBurstClassifies: each answer is counted once, in its class and in
// its histograms: 200, 409 sold_out, another 409, a 503 of a dependency, a
// 503 of a shed join and a connection closed without an answer.
func TestRunBurstClassifies(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		switch n.Add(1) % 6 {
		case 0:
			_, _ = w.Write([]byte(`{"token":"t"}`))
		case 1:
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"error":{"code":"sold_out","message":"sold out"}}`))
		case 2:
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"error":{"code":"limit_reached","message":"already joined"}}`))
		case 3:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"a dependency is unavailable"}}`))
		case 4:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"the service is busy with other joins"}}`))
		case 5:
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		}
	}))
	t.Cleanup(srv.Close)
	r, err := RunBurst(context.Background(), Burst{URLs: []string{srv.URL}, Rate: 600, Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 60 || r.OK != 10 || r.SoldOut != 10 || r.Shed != 10 ||
		r.Other["409 limit_reached"] != 10 || r.Other["503 unavailable"] != 10 || r.Other["failed"] != 10 || len(r.Other) != 3 {
		t.Fatalf("sent %d: ok %d, sold out %d, shed %d, other %v; want 60 sent, 10 of each", r.Sent, r.OK, r.SoldOut, r.Shed, r.Other)
	}
	if r.ServerErrors() != 20 || r.ClientErrors() != 10 || !r.Has5xx() {
		t.Errorf("server errors %d, client errors %d, has 5xx %v: want 20, 10, true", r.ServerErrors(), r.ClientErrors(), r.Has5xx())
	}
	if r.OKLatency.TotalCount() != 10 || r.SoldOutLatency.TotalCount() != 10 || r.ShedLatency.TotalCount() != 10 || r.AllLatency.TotalCount() != 60 {
		t.Errorf("histograms hold %d ok, %d sold out, %d shed, %d in all: want 10, 10, 10, 60",
			r.OKLatency.TotalCount(), r.SoldOutLatency.TotalCount(), r.ShedLatency.TotalCount(), r.AllLatency.TotalCount())
	}
	clean := &BurstResult{Other: map[string]int64{"409 limit_reached": 3}}
	if clean.Has5xx() || clean.ServerErrors() != 0 || clean.ClientErrors() != 3 {
		t.Errorf("only 409s: has 5xx %v, server errors %d, client errors %d", clean.Has5xx(), clean.ServerErrors(), clean.ClientErrors())
	}
}

// TestRunBurstDropsPastCap: a server that never answers holds the first
// MaxOutstanding requests until they time out; the arrivals due meanwhile
// are dropped and counted, not sent.
func TestRunBurstDropsPastCap(t *testing.T) {
	var got atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got.Add(1)
		// Read to the end: only then does the server notice the client
		// closing the connection and cancel the context.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done(): // the client gave up
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // before srv.Close, which waits for the handlers
	// 20 arrivals in 100 ms; the 5 sent are held for 2 s, past the last
	// arrival unless the generator stalls for 2 s.
	r, err := RunBurst(context.Background(), Burst{URLs: []string{srv.URL}, Rate: 200, Duration: 100 * time.Millisecond,
		Timeout: 2 * time.Second, MaxOutstanding: 5})
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 5 || r.Dropped != 15 || r.MaxOutstanding != 5 || r.Other["failed"] != 5 || got.Load() != 5 {
		t.Errorf("sent %d, dropped %d, at most %d in progress, answers %v, the server saw %d: want 5 sent and timed out, 15 dropped",
			r.Sent, r.Dropped, r.MaxOutstanding, r.Other, got.Load())
	}
	if r.AllLatency.TotalCount() != 5 || r.AllLatency.At(0) < 2*time.Second-5*time.Millisecond {
		t.Errorf("%d latencies, the least %v: want the 5 timeouts, each at least 2s", r.AllLatency.TotalCount(), r.AllLatency.At(0))
	}
}

// TestRunBurstBadOptions: what RunBurst refuses.
func TestRunBurstBadOptions(t *testing.T) {
	ok := Burst{URLs: []string{"http://127.0.0.1:1"}, Rate: 10, Duration: time.Second}
	for name, mod := range map[string]func(*Burst){
		"NoURL":           func(b *Burst) { b.URLs = nil },
		"EmptyURL":        func(b *Burst) { b.URLs = []string{"http://x", ""} },
		"ZeroRate":        func(b *Burst) { b.Rate = 0 },
		"RateTooHigh":     func(b *Burst) { b.Rate = MaxBurstRate + 1 },
		"ZeroDuration":    func(b *Burst) { b.Duration = 0 },
		"DurationTooLong": func(b *Burst) { b.Duration = MaxBurstDuration + time.Second },
		"NegativeTimeout": func(b *Burst) { b.Timeout = -time.Second },
		"NegativeCap":     func(b *Burst) { b.MaxOutstanding = -1 },
		"NegativeConns":   func(b *Burst) { b.Conns = -1 },
		"NotHTTP":         func(b *Burst) { b.URLs = []string{"https://127.0.0.1:1"} },
	} {
		t.Run(name, func(t *testing.T) {
			b := ok
			mod(&b)
			if r, err := RunBurst(context.Background(), b); err == nil {
				t.Errorf("RunBurst(%+v) = %+v, want an error", b, r)
			}
		})
	}
}

// TestLatenciesSummary: the percentiles of a known spread, within the
// histogram's three significant digits, and a latency past 60 s kept as
// 60 s rather than lost.
func TestLatenciesSummary(t *testing.T) {
	l := NewLatencies()
	for i := 1; i <= 1000; i++ {
		l.Record(time.Duration(i) * time.Millisecond)
	}
	l.Record(2 * time.Minute)
	s := l.Summary()
	near := func(got, want time.Duration) bool { return got >= want && got <= want+want/500 }
	if s.Count != 1001 || !near(s.P50, 501*time.Millisecond) || !near(s.P90, 901*time.Millisecond) ||
		!near(s.P99, 991*time.Millisecond) || !near(s.P999, 1000*time.Millisecond) || !near(s.Max, time.Minute) {
		t.Errorf("summary %+v", s)
	}
	if empty := NewLatencies().Summary(); empty != (Summary{}) {
		t.Errorf("empty summary %+v, want zeros", empty)
	}
}

// TestRunBurstConns: the server never sees more requests at once than
// Conns; the arrivals that waited for a connection are timed from their due
// time, so the wait shows in the latencies.
func TestRunBurstConns(t *testing.T) {
	var now, most atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n := now.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(20 * time.Millisecond)
		now.Add(-1)
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(srv.Close)
	// 60 arrivals in 100 ms on 3 connections of 20 ms a request: the last
	// waits about 400 ms − 100 ms.
	r, err := RunBurst(context.Background(), Burst{URLs: []string{srv.URL}, Rate: 600, Duration: 100 * time.Millisecond, Conns: 3})
	if err != nil {
		t.Fatal(err)
	}
	if r.OK != 60 || most.Load() != 3 {
		t.Fatalf("ok %d, at most %d at the server at once: want 60 and 3", r.OK, most.Load())
	}
	if max := r.OKLatency.Summary().Max; max < 250*time.Millisecond {
		t.Fatalf("the longest latency %v, want the wait for a connection in it (about 300 ms)", max)
	}
	if r.MaxOutstanding < 40 {
		t.Fatalf("at most %d in progress, want most of the 60 (waiting for a connection counts: about 45 by the last arrival)", r.MaxOutstanding)
	}
}

// TestRunBurstSkipsInformational: a 103 Early Hints before the answer is
// not taken for it, and the next request on the connection reads its own.
func TestRunBurstSkipsInformational(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"token":"t"}`))
	}))
	t.Cleanup(srv.Close)
	r, err := RunBurst(context.Background(), Burst{URLs: []string{srv.URL}, Rate: 100, Duration: 100 * time.Millisecond, Conns: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.OK != 10 || len(r.Other) != 0 {
		t.Fatalf("ok %d, other %v: want the 10 answers 200", r.OK, r.Other)
	}
}
