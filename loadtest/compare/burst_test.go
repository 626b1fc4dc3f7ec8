package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBurstFlags: the defaults, a full set of flags, and every bad flag
// exits 2 before anything is sent.
func TestBurstFlags(t *testing.T) {
	p, _, err := parseBurst(nil, io.Discard)
	if err != nil || !slices.Equal(p.Rates, []int{2000, 5000, 10000, 20000}) || p.Duration != 5*time.Second ||
		p.Stock != 10_000 || p.SoldOut || p.Pause != 2*time.Second || !slices.Equal(p.Bases, []string{"http://127.0.0.1:8080"}) || p.Conns != 1024 {
		t.Errorf("defaults: %+v, %v", p, err)
	}
	p, token, err := parseBurst([]string{"-url", "http://a:1,http://b:2/", "-token", "x", "-rates", "100, 300", "-d", "3s",
		"-stock", "7", "-soldout", "-pause", "0s", "-timeout", "2s", "-max-outstanding", "9",
		"-overload", "1, 2.5", "-capacity", "3000", "-overload-stock", "50000", "-conns", "64"}, io.Discard)
	want := burstPlan{Bases: []string{"http://a:1", "http://b:2"}, Rates: []int{100, 300}, Duration: 3 * time.Second,
		Stock: 7, SoldOut: true, Timeout: 2 * time.Second, MaxOutstanding: 9, Overload: []float64{1, 2.5}, Capacity: 3000, OverloadStock: 50_000, Conns: 64}
	if err != nil || token != "x" || !reflect.DeepEqual(p, want) {
		t.Errorf("parsed %+v, token %q, %v; want %+v", p, token, err, want)
	}
	for _, args := range [][]string{
		{"-rates", ""}, {"-rates", "1000,"}, {"-rates", "0"}, {"-rates", "2000,x"}, {"-rates", "2000000"},
		{"-d", "0s"}, {"-d", "2m"}, {"-stock", "0"}, {"-pause", "-1s"}, {"-timeout", "0s"}, {"-max-outstanding", "0"},
		{"-url", "127.0.0.1:8080"}, {"-url", ""}, {"-nope"}, {"-d", "5"}, {"extra"},
		{"-conns", "0"}, {"-overload", "0"}, {"-overload", "2,"}, {"-overload", "x"}, {"-capacity", "-1"}, {"-overload-stock", "0"},
	} {
		if code := burst(args); code != 2 {
			t.Errorf("compare -burst %q: exit %d, want 2", args, code)
		}
	}
}

// fakeService is the admin API and join endpoint of the service, enough
// for compare -burst: activities with a stock, one token per join.
type fakeService struct {
	mu    sync.Mutex
	stock []int64        // by id − 1
	joins map[string]int // by host
	// shedOdd sheds every other join, as a service past its limit would.
	shedOdd bool
	n       int
}

func (f *fakeService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path == "/metrics" {
		_, _ = fmt.Fprintf(w, "# HELP process_resident_memory_bytes Resident memory size in bytes.\nprocess_resident_memory_bytes %d\n", (40+f.n)<<20)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/api/v1/admin/") {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/api/v1/admin/activities" {
			var a struct{ Stock int64 }
			_ = json.NewDecoder(r.Body).Decode(&a)
			f.stock = append(f.stock, a.Stock)
			fmt.Fprintf(w, `{"id":%d}`, len(f.stock))
			return
		}
		_, _ = w.Write([]byte(`{}`)) // approve, open
		return
	}
	var id int
	if _, err := fmt.Sscanf(r.URL.Path, "/api/v1/activities/%d/join", &id); err != nil || id < 1 || id > len(f.stock) {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	f.joins[r.Host]++
	f.n++
	if f.shedOdd && f.n%2 == 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"the service is busy with other joins"}}`))
		return
	}
	if f.stock[id-1] == 0 {
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write([]byte(`{"error":{"code":"sold_out","message":"sold out"}}`))
		return
	}
	f.stock[id-1]--
	_, _ = w.Write([]byte(`{"token":"t"}`))
}

// TestBurstSteps: against a fake service on two URLs, each rate bursts a
// fresh activity and then one sold out first, in that order, arrivals
// shared between the URLs; the table has a row per step.
func TestBurstSteps(t *testing.T) {
	f := &fakeService{joins: map[string]int{}}
	a, b := httptest.NewServer(f), httptest.NewServer(f)
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	plan := burstPlan{Bases: []string{a.URL, b.URL}, Rates: []int{200, 400}, Duration: 100 * time.Millisecond,
		Stock: 10, SoldOut: true, Timeout: 5 * time.Second, MaxOutstanding: 1000}
	steps, err := burstSteps(context.Background(), newService(a.URL, "tok"), plan)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		rate                int
		soldOutBefore       bool
		stock               int64
		sent, ok, soldOut   int64
		errors, allRecorded int64
	}
	var got []row
	for _, s := range steps {
		got = append(got, row{s.Rate, s.SoldOutBefore, s.Stock, s.Sent, s.OK, s.SoldOut, s.ServerErrors + s.ClientErrors, s.AllLatency.Count})
	}
	want := []row{{200, false, 10, 20, 10, 10, 0, 20}, {200, true, 1, 20, 0, 20, 0, 20},
		{400, false, 10, 40, 10, 30, 0, 40}, {400, true, 1, 40, 0, 40, 0, 40}}
	if !slices.Equal(got, want) {
		t.Errorf("steps %+v\nwant  %+v", got, want)
	}
	f.mu.Lock()
	// 120 arrivals and 2 sell-out joins, those on the first URL.
	ja, jb := f.joins[strings.TrimPrefix(a.URL, "http://")], f.joins[strings.TrimPrefix(b.URL, "http://")]
	f.mu.Unlock()
	if ja != 62 || jb != 60 {
		t.Errorf("joins on the two URLs: %d and %d, want 62 and 60", ja, jb)
	}
	var out bytes.Buffer
	if err := printBurst(&out, steps); err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) > 0 && (f[0] == "200" || f[0] == "400") {
			rows++
		}
	}
	if rows != 4 {
		t.Errorf("%d step rows in the table, want 4:\n%s", rows, &out)
	}

	if _, err := burstSteps(context.Background(), newService(a.URL, "wrong"), plan); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("with a wrong token: %v, want the 401", err)
	}
}

// TestOverloadSteps: an overload plan bursts each multiple of the capacity
// on a fresh activity of its own stock, counts the shed joins apart with
// their latencies, reads the service's memory, and prints a verdict a step.
func TestOverloadSteps(t *testing.T) {
	f := &fakeService{joins: map[string]int{}, shedOdd: true}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	plan := burstPlan{Bases: []string{srv.URL}, Duration: 100 * time.Millisecond, Timeout: 5 * time.Second, MaxOutstanding: 1000,
		Overload: []float64{1, 2}, Capacity: 100, OverloadStock: 1000}
	// Without a capacity, and no rate held (every other join shed), there is
	// nothing to multiply.
	noCapacity := plan
	noCapacity.Rates, noCapacity.Stock, noCapacity.Capacity = []int{100}, 10, 0
	if _, err := burstSteps(context.Background(), newService(srv.URL, "tok"), noCapacity); err == nil || !strings.Contains(err.Error(), "no capacity") {
		t.Errorf("overloads of no capacity: %v, want an error saying so", err)
	}
	steps, err := burstSteps(context.Background(), newService(srv.URL, "tok"), plan)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 {
		t.Fatalf("%d steps, want 2", len(steps))
	}
	for i, want := range []struct {
		rate     int
		overload float64
		sent     int64
	}{{100, 1, 10}, {200, 2, 20}} {
		s := steps[i]
		if s.Rate != want.rate || s.Overload != want.overload || s.Stock != 1000 || s.Sent != want.sent ||
			s.OK+s.Shed != want.sent || s.Shed < want.sent/2-1 || s.ShedLatency.Count != s.Shed || s.ServerErrors != 0 {
			t.Errorf("step %d: %+v; want rate %d, %g×, stock 1000, %d sent, about half shed and none a 5xx", i, s, want.rate, want.overload, want.sent)
		}
		if s.RSSBeforeMB < 40 || s.RSSPeakMB < s.RSSBeforeMB {
			t.Errorf("step %d: RSS %v → %v MB, want the fake's readings (40 MB and more)", i, s.RSSBeforeMB, s.RSSPeakMB)
		}
	}
	var out bytes.Buffer
	if err := printBurst(&out, steps); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "overload "); n != 2 || !strings.Contains(out.String(), "overload 2× capacity (200/s)") {
		t.Errorf("%d overload verdicts, want one a step:\n%s", n, &out)
	}
	if strings.Contains(out.String(), "highest rate") {
		t.Errorf("an overload-only plan printed a highest rate held:\n%s", &out)
	}

	// Without a capacity, the overloads multiply the highest rate held.
	calm := httptest.NewServer(&fakeService{joins: map[string]int{}})
	t.Cleanup(calm.Close)
	plan = burstPlan{Bases: []string{calm.URL}, Rates: []int{200}, Stock: 1000, Duration: 100 * time.Millisecond, Timeout: 5 * time.Second,
		MaxOutstanding: 1000, Overload: []float64{0.5}, OverloadStock: 1000}
	if steps, err = burstSteps(context.Background(), newService(calm.URL, "tok"), plan); err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 || !steps[0].held() || steps[1].Rate != 100 || steps[1].Overload != 0.5 {
		t.Errorf("steps %+v: want 200/s held, then 0.5× of it at 100/s", steps)
	}
}

// TestPrintBurstVerdict: the highest rate held is the highest whose p99 of
// all answers is within 50 ms with no 5xx, failure or dropped arrival, for
// the stock and the sold-out bursts apart; none when no rate held.
func TestPrintBurstVerdict(t *testing.T) {
	step := func(rate int, soldOut bool, p99 float64, serverErrors, dropped int64) burstStep {
		return burstStep{Rate: rate, SoldOutBefore: soldOut, Stock: 10, DurationSec: 1, Sent: 100,
			ServerErrors: serverErrors, Dropped: dropped, AllLatency: latencyMs{Count: 100, P99Ms: p99}}
	}
	// A step answered partly 429 (a rate limit) is not held, however fast.
	rateLimited := func(s burstStep) burstStep {
		s.ClientErrors = 5
		return s
	}
	for _, tc := range []struct {
		name  string
		steps []burstStep
		want  []string
	}{
		{"Mixed", []burstStep{step(1000, false, 3, 0, 0), step(2000, false, 50, 0, 0), step(5000, false, 51, 0, 0),
			step(10000, false, 4, 1, 0), step(20000, false, 4, 0, 1),
			step(1000, true, 2, 0, 0), step(2000, true, 2, 0, 0), step(5000, true, 2, 0, 0)},
			[]string{"with stock: 2,000/s", "sold out: 5,000/s"}},
		{"NoneHeld", []burstStep{step(1000, false, 80, 0, 0)}, []string{"with stock: none"}},
		{"RateLimited", []burstStep{step(1000, false, 3, 0, 0), rateLimited(step(2000, false, 3, 0, 0))}, []string{"with stock: 1,000/s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := printBurst(&out, tc.steps); err != nil {
				t.Fatal(err)
			}
			var verdicts []string
			for _, line := range strings.Split(out.String(), "\n") {
				if strings.HasPrefix(line, "highest rate") {
					verdicts = append(verdicts, line[strings.LastIndex(line, ", ")+2:])
				}
			}
			if !slices.Equal(verdicts, tc.want) {
				t.Errorf("verdicts %q, want %q\n%s", verdicts, tc.want, &out)
			}
		})
	}
}
