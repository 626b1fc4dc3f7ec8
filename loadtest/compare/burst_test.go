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
		p.Stock != 10_000 || p.SoldOut || p.Pause != 2*time.Second || !slices.Equal(p.Bases, []string{"http://127.0.0.1:8080"}) {
		t.Errorf("defaults: %+v, %v", p, err)
	}
	p, token, err := parseBurst([]string{"-url", "http://a:1,http://b:2/", "-token", "x", "-rates", "100, 300", "-d", "3s",
		"-stock", "7", "-soldout", "-pause", "0s", "-timeout", "2s", "-max-outstanding", "9"}, io.Discard)
	want := burstPlan{Bases: []string{"http://a:1", "http://b:2"}, Rates: []int{100, 300}, Duration: 3 * time.Second,
		Stock: 7, SoldOut: true, Timeout: 2 * time.Second, MaxOutstanding: 9}
	if err != nil || token != "x" || !reflect.DeepEqual(p, want) {
		t.Errorf("parsed %+v, token %q, %v; want %+v", p, token, err, want)
	}
	for _, args := range [][]string{
		{"-rates", ""}, {"-rates", "1000,"}, {"-rates", "0"}, {"-rates", "2000,x"}, {"-rates", "2000000"},
		{"-d", "0s"}, {"-d", "2m"}, {"-stock", "0"}, {"-pause", "-1s"}, {"-timeout", "0s"}, {"-max-outstanding", "0"},
		{"-url", "127.0.0.1:8080"}, {"-url", ""}, {"-nope"}, {"-d", "5"}, {"extra"},
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
}

func (f *fakeService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
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
