package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"seckill/loadtest/load"
)

// burstP99Target is the p99 a rate must keep, with no 5xx and no failure,
// to count as held.
const burstP99Target = 50 * time.Millisecond

// burstPlan is what compare -burst runs: each rate for Duration on a fresh
// activity of Stock, and with SoldOut also on one already sold out.
type burstPlan struct {
	Bases          []string
	Rates          []int
	Duration       time.Duration
	Stock          int64
	SoldOut        bool
	Pause          time.Duration
	Timeout        time.Duration
	MaxOutstanding int
}

// burstStep is one burst of the plan, ready for docs/benchmarks.json.
type burstStep struct {
	Rate int `json:"rate"`
	// SoldOutBefore: the activity (stock 1) was sold out before the burst.
	SoldOutBefore bool    `json:"soldOutBefore"`
	Activity      int64   `json:"activity"`
	Stock         int64   `json:"stock"`
	DurationSec   float64 `json:"durationSec"`
	Sent          int64   `json:"sent"`
	// Dropped arrivals were not sent: the generator's cap on requests in
	// progress was reached.
	Dropped int64 `json:"dropped"`
	OK      int64 `json:"ok"`
	SoldOut int64 `json:"soldOut"`
	// ServerErrors are 5xx answers and transport failures, ClientErrors
	// 4xx answers other than sold_out; Other has them by status and code.
	ServerErrors   int64            `json:"serverErrors"`
	ClientErrors   int64            `json:"clientErrors"`
	Other          map[string]int64 `json:"other,omitempty"`
	MaxOutstanding int64            `json:"maxOutstanding"`
	MaxLagMs       float64          `json:"maxLagMs"`
	ElapsedSec     float64          `json:"elapsedSec"`
	// The latencies of 200 answers, of sold_out answers and of every
	// request, from each arrival's due time.
	OKLatency      latencyMs `json:"okLatency"`
	SoldOutLatency latencyMs `json:"soldOutLatency"`
	AllLatency     latencyMs `json:"allLatency"`
}

// latencyMs is a load.Summary in milliseconds.
type latencyMs struct {
	Count  int64   `json:"count"`
	P50Ms  float64 `json:"p50Ms"`
	P90Ms  float64 `json:"p90Ms"`
	P99Ms  float64 `json:"p99Ms"`
	P999Ms float64 `json:"p999Ms"`
	MaxMs  float64 `json:"maxMs"`
}

func newLatencyMs(l load.Latencies) latencyMs {
	s := l.Summary()
	return latencyMs{Count: s.Count, P50Ms: msOf(s.P50), P90Ms: msOf(s.P90), P99Ms: msOf(s.P99), P999Ms: msOf(s.P999), MaxMs: msOf(s.Max)}
}

// held tells whether the step kept the target: every arrival sent, p99 of
// all answers within burstP99Target, every answer a token or sold_out (no
// 5xx, no failure, no other 4xx such as a rate limit's 429).
func (s burstStep) held() bool {
	return s.Dropped == 0 && s.ServerErrors == 0 && s.ClientErrors == 0 && s.Sent > 0 && s.AllLatency.P99Ms <= msOf(burstP99Target)
}

// burst is compare -burst, the open-loop burst generator alone against a
// running service: each rate of -rates for -d on a fresh activity, and
// with -soldout on an activity already sold out, then one table.
func burst(args []string) int {
	plan, token, err := parseBurst(args, os.Stderr)
	if err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	steps, err := burstSteps(ctx, newService(plan.Bases[0], token), plan)
	if len(steps) > 0 {
		if perr := printBurst(os.Stdout, steps); perr != nil && err == nil {
			err = perr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare -burst:", err)
		return 1
	}
	return 0
}

// parseBurst reads the flags of compare -burst and returns the plan and
// the admin token; on bad flags it tells stderr why and returns an error.
func parseBurst(args []string, stderr io.Writer) (burstPlan, string, error) {
	fs := flag.NewFlagSet("compare -burst", flag.ContinueOnError)
	fs.SetOutput(stderr)
	urlList := fs.String("url", "http://127.0.0.1:8080", "base URL of the service; several, comma-separated, for instances of one service (arrivals go to each in turn)")
	token := fs.String("token", os.Getenv("SECKILL_ADMIN_TOKEN"), "admin token (to create the activities)")
	rates := fs.String("rates", "2000,5000,10000,20000", "arrival rates per second, comma-separated, one burst each")
	var p burstPlan
	fs.DurationVar(&p.Duration, "d", 5*time.Second, "duration of each burst")
	fs.Int64Var(&p.Stock, "stock", 10_000, "stock of the fresh activity of each rate")
	fs.BoolVar(&p.SoldOut, "soldout", false, "also burst each rate on an activity already sold out")
	fs.DurationVar(&p.Pause, "pause", 2*time.Second, "pause between bursts")
	fs.DurationVar(&p.Timeout, "timeout", 10*time.Second, "timeout of one request")
	fs.IntVar(&p.MaxOutstanding, "max-outstanding", 50_000, "most requests in progress at once; arrivals past it are dropped and counted")
	if err := fs.Parse(args); err != nil {
		return p, "", err
	}
	bad := func(format string, a ...any) (burstPlan, string, error) {
		err := fmt.Errorf(format, a...)
		_, _ = fmt.Fprintln(stderr, "compare -burst:", err)
		return p, "", err
	}
	if fs.NArg() > 0 {
		return bad("unexpected arguments %q", fs.Args())
	}
	if p.Duration <= 0 || p.Duration > time.Minute || p.Stock < 1 || p.Stock > 10_000_000 || p.Pause < 0 || p.Pause > time.Minute ||
		p.Timeout <= 0 || p.Timeout > time.Minute || p.MaxOutstanding < 1 || p.MaxOutstanding > 1_000_000 {
		return bad("-d must be in (0, 1m], -stock in [1, 10,000,000], -pause in [0, 1m], -timeout in (0, 1m], -max-outstanding in [1, 1,000,000]")
	}
	var err error
	if p.Bases, err = splitURLs(*urlList); err != nil {
		return bad("-url: %v", err)
	}
	for _, s := range strings.Split(*rates, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || r < 1 || r > load.MaxBurstRate {
			return bad("-rates %q: want rates per second in [1, %d], comma-separated", *rates, load.MaxBurstRate)
		}
		p.Rates = append(p.Rates, r)
	}
	return p, *token, nil
}

// burstSteps runs the plan against the service that svc drives (the
// first of p.Bases): for each rate a burst on a fresh activity, then with
// p.SoldOut one on an activity sold out first, p.Pause before each but the
// first. It returns the steps done so far along with the first error, or
// ctx's error when ctx ends the plan.
func burstSteps(ctx context.Context, svc *service, p burstPlan) ([]burstStep, error) {
	users := userPrefix("burst")
	kinds := []bool{false}
	if p.SoldOut {
		kinds = append(kinds, true)
	}
	var steps []burstStep
	for _, rate := range p.Rates {
		for _, soldOut := range kinds {
			if len(steps) > 0 {
				if err := load.Sleep(ctx, p.Pause); err != nil {
					return steps, err
				}
			}
			s, err := runBurstStep(ctx, svc, p, rate, soldOut, users)
			if err != nil {
				return steps, fmt.Errorf("%d/s: %w", rate, err)
			}
			steps = append(steps, s)
		}
	}
	return steps, nil
}

// runBurstStep opens an activity — of p.Stock, or of stock 1 sold out with
// one join — and bursts rate arrivals per second at it.
func runBurstStep(ctx context.Context, svc *service, p burstPlan, rate int, soldOut bool, users string) (burstStep, error) {
	stock, name := p.Stock, fmt.Sprintf("compare -burst %d/s", rate)
	if soldOut {
		stock, name = 1, name+" sold out"
	}
	id, err := svc.openActivity(ctx, name, stock)
	if err != nil {
		return burstStep{}, err
	}
	if soldOut {
		status, body, err := load.Post(ctx, svc.client, svc.url+joinPath(id), fmt.Sprintf("%sseller-%d", users, id))
		if err != nil {
			return burstStep{}, fmt.Errorf("selling activity %d out: %w", id, err)
		}
		if status != http.StatusOK {
			return burstStep{}, fmt.Errorf("selling activity %d out: %d %s", id, status, bytes.TrimSpace(body))
		}
	}
	r, err := load.RunBurst(ctx, load.Burst{URLs: endpoints(p.Bases, joinPath(id)), Rate: rate, Duration: p.Duration,
		UserPrefix: users, Timeout: p.Timeout, MaxOutstanding: p.MaxOutstanding})
	if err != nil {
		return burstStep{}, err
	}
	if err := ctx.Err(); err != nil {
		return burstStep{}, err // cut short: not a measurement
	}
	return burstStep{
		Rate: rate, SoldOutBefore: soldOut, Activity: id, Stock: stock, DurationSec: p.Duration.Seconds(),
		Sent: r.Sent, Dropped: r.Dropped, OK: r.OK, SoldOut: r.SoldOut,
		ServerErrors: r.ServerErrors(), ClientErrors: r.ClientErrors(), Other: r.Other,
		MaxOutstanding: r.MaxOutstanding, MaxLagMs: msOf(r.MaxLag), ElapsedSec: r.Elapsed.Seconds(),
		OKLatency: newLatencyMs(r.OKLatency), SoldOutLatency: newLatencyMs(r.SoldOutLatency), AllLatency: newLatencyMs(r.AllLatency),
	}, nil
}

// printBurst writes the steps as one table, the answers other than 200 and
// sold_out, and the highest rate held with stock and sold out; it returns
// the error of writing to w.
func printBurst(w io.Writer, steps []burstStep) error {
	var b bytes.Buffer
	if len(steps) > 0 {
		fmt.Fprintf(&b, "\nopen-loop bursts: arrivals at a fixed rate for %gs each, whatever the answers; latencies from each arrival's due time\n",
			steps[0].DurationSec)
	}
	b.WriteString("\t\t\t\t\t\t5xx+\tother\t200\t\t\t\tsold-out\t\t\t\tall\tmax in\tmax\n")
	b.WriteString("rate/s\tactivity\tsent\tdropped\t200\tsold-out\tfailed\t4xx\tp50\tp99\tp99.9\tmax\tp50\tp99\tp99.9\tmax\tp99\tprogress\tlag\n")
	for _, s := range steps {
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", commas(int64(s.Rate)), s.activity(),
			commas(s.Sent), commas(s.Dropped), commas(s.OK), commas(s.SoldOut), commas(s.ServerErrors), commas(s.ClientErrors),
			s.OKLatency.cells(), s.SoldOutLatency.cells(), latencyCell(s.AllLatency.Count, s.AllLatency.P99Ms),
			commas(s.MaxOutstanding)+"\t"+ms(s.MaxLagMs))
	}
	for _, s := range steps {
		if len(s.Other) > 0 {
			fmt.Fprintf(&b, "    %s/s %s: %s\n", commas(int64(s.Rate)), s.activity(), counts(s.Other))
		}
	}
	b.WriteString("max lag: the most a request was sent after its due time (the generator's own delay, counted in the latencies).\n")
	for _, soldOut := range []bool{false, true} {
		ran, best := false, 0
		for _, s := range steps {
			if s.SoldOutBefore == soldOut {
				ran = true
				if s.held() {
					best = max(best, s.Rate)
				}
			}
		}
		if !ran {
			continue
		}
		kind := "with stock"
		if soldOut {
			kind = "sold out"
		}
		verdict := "none"
		if best > 0 {
			verdict = commas(int64(best)) + "/s"
		}
		fmt.Fprintf(&b, "highest rate with p99 ≤ %v, every answer a token or sold_out, nothing dropped, %s: %s\n", burstP99Target, kind, verdict)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if _, err := tw.Write(b.Bytes()); err != nil {
		return err
	}
	return tw.Flush()
}

func (s burstStep) activity() string {
	if s.SoldOutBefore {
		return "sold out"
	}
	return "stock " + commas(s.Stock)
}

// cells are the p50, p99, p99.9 and max columns of one class of answers.
func (l latencyMs) cells() string {
	return strings.Join([]string{latencyCell(l.Count, l.P50Ms), latencyCell(l.Count, l.P99Ms),
		latencyCell(l.Count, l.P999Ms), latencyCell(l.Count, l.MaxMs)}, "\t")
}

func latencyCell(count int64, v float64) string {
	if count == 0 {
		return "–"
	}
	return ms(v)
}
