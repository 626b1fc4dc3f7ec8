package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"
)

// procCPU reads this process's CPU time, which grows as it works.
func TestProcCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	before, ok := procCPU(os.Getpid())
	if !ok {
		t.Fatal("procCPU of this process: not readable")
	}
	// Work until the reading grows: a tick is 10 ms of CPU. A reading that
	// never grows fails after a while, instead of spinning for ever.
	x := 0
	for tries := 0; ; tries++ {
		if later, _ := procCPU(os.Getpid()); later > before {
			break
		}
		if tries == 10_000 {
			t.Fatalf("procCPU stays at %v after 10 billion additions", before)
		}
		for i := range 1_000_000 {
			x += i
		}
	}
	_ = x
	if _, ok := machineCPU(); !ok {
		t.Error("machineCPU: /proc/stat not readable")
	}
	if _, ok := procCPU(-1); ok {
		t.Error("procCPU(-1) read something")
	}
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	if pid, ok := findProcess("no-such-command", strings.TrimSpace(string(comm))); !ok || pid != os.Getpid() {
		t.Errorf("findProcess(%q) = %d, %v; want this process, %d", comm, pid, ok, os.Getpid())
	}
}

// The latency budget is the difference of two readings of the service's
// histograms; series of other metrics and labels are left alone.
func TestLatencyBudget(t *testing.T) {
	var page string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, page) }))
	defer srv.Close()
	svc := newService(srv.URL, "x")
	metrics := func(handler, claim float64, n int) string {
		return fmt.Sprintf(`# HELP seckill_join_duration_seconds x
seckill_join_duration_seconds_bucket{le="0.001"} 3
seckill_join_duration_seconds_sum %g
seckill_join_duration_seconds_count %d
seckill_join_stage_duration_seconds_sum{stage="claim"} %g
seckill_join_stage_duration_seconds_count{stage="claim"} %d
seckill_join_stage_duration_seconds_sum{stage="confirmed"} 99
seckill_join_stage_duration_seconds_count{stage="confirmed"} 99
seckill_kafka_produce_duration_seconds_sum 7
`, handler, n, claim, n)
	}
	page = metrics(1, 0.5, 100)
	before, err := svc.histSums(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	page = metrics(3, 1.5, 1100)
	after, err := svc.histSums(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := budgetOf(before, after)
	want := []stageBudget{{Stage: "handler", MeanMs: 2, Count: 1000}, {Stage: "claim", MeanMs: 1, Count: 1000}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("budget %v, want %v", got, want)
	}
}

// The ratios judge tokens per second against their targets, and the report
// prints each with its verdict.
func TestRatios(t *testing.T) {
	sec := 2.0
	h := &harness{cfg: config{conns: 64}, results: []*designResult{
		{Key: "a", OKPerSec: 1000, runResult: runResult{OK: 10_000}},
		{Key: "f", OKPerSec: 12_000, runResult: runResult{OK: 120_000, P99Ms: 25, ElapsedSec: 10, CPU: cpuUse{Server: &sec}},
			SoldOutRun: &runResult{JoinsPerSec: 19_000}},
		{Key: "g", OKPerSec: 20_000, runResult: runResult{OK: 200_000}},
	}}
	r := h.report()
	verdicts := map[string]string{}
	for _, q := range r.Ratios {
		switch {
		case q.Missing != "":
			verdicts[q.Name] = "missing"
		case q.Pass == nil:
			verdicts[q.Name] = fmt.Sprintf("%.2f", q.Value)
		default:
			verdicts[q.Name] = fmt.Sprintf("%.2f %v", q.Value, *q.Pass)
		}
	}
	for name, want := range map[string]string{
		"f/g tokens/s":                     "0.60 true",
		"f/a tokens/s":                     "12.00 true",
		"f/b tokens/s":                     "missing",
		"f sold-out answers/s ÷ g":         "0.95 true",
		"f join p99 in ms, 64 connections": "25.00 false",
	} {
		if verdicts[name] != want {
			t.Errorf("%s: %q, want %q", name, verdicts[name], want)
		}
	}
	var out bytes.Buffer
	if err := r.print(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"f/g tokens/s", "PASS", "MISS", "CPU during (f)'s run", "17 µs"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
