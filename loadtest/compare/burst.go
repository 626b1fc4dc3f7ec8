package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
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

// The targets of an overload, arrivals at multiples of the capacity: the
// accepted joins keep their p99 under overloadOKP99, the shed ones are
// answered under overloadShedP99, and the service's memory grows by at
// most overloadRSSGrowth over the burst.
const (
	overloadOKP99     = 100 * time.Millisecond
	overloadShedP99   = 10 * time.Millisecond
	overloadRSSGrowth = 64 << 20
)

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
	Conns          int
	// Overload are multiples of Capacity (arrivals/s): one burst each on a
	// fresh activity of OverloadStock, enough for every arrival. Capacity
	// 0 is the highest of Rates held with stock.
	Overload      []float64
	Capacity      float64
	OverloadStock int64
}

// burstStep is one burst of the plan, ready for docs/benchmarks.json.
type burstStep struct {
	Rate int `json:"rate"`
	// SoldOutBefore: the activity (stock 1) was sold out before the burst.
	SoldOutBefore bool `json:"soldOutBefore"`
	// Overload is the rate as a multiple of the capacity, for a burst of
	// the overload part; 0 for the others.
	Overload    float64 `json:"overload,omitempty"`
	Activity    int64   `json:"activity"`
	Stock       int64   `json:"stock"`
	DurationSec float64 `json:"durationSec"`
	Sent        int64   `json:"sent"`
	// Dropped arrivals were not sent: the generator's cap on requests in
	// progress was reached.
	Dropped int64 `json:"dropped"`
	OK      int64 `json:"ok"`
	SoldOut int64 `json:"soldOut"`
	// Shed are the joins answered 503 because too many were in progress.
	Shed int64 `json:"shed"`
	// ServerErrors are 5xx answers and transport failures, ClientErrors
	// 4xx answers other than sold_out; Other has them by status and code.
	ServerErrors   int64            `json:"serverErrors"`
	ClientErrors   int64            `json:"clientErrors"`
	Other          map[string]int64 `json:"other,omitempty"`
	MaxOutstanding int64            `json:"maxOutstanding"`
	MaxLagMs       float64          `json:"maxLagMs"`
	ElapsedSec     float64          `json:"elapsedSec"`
	// The latencies of 200 answers, of sold_out answers, of shed joins and
	// of every request, from each arrival's due time.
	OKLatency      latencyMs `json:"okLatency"`
	SoldOutLatency latencyMs `json:"soldOutLatency"`
	ShedLatency    latencyMs `json:"shedLatency"`
	AllLatency     latencyMs `json:"allLatency"`
	// The service's resident memory before the burst and the most seen
	// during it (read from its metrics every 100 ms).
	RSSBeforeMB float64 `json:"rssBeforeMB"`
	RSSPeakMB   float64 `json:"rssPeakMB"`
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
	return s.Dropped == 0 && s.ServerErrors == 0 && s.ClientErrors == 0 && s.Shed == 0 && s.Sent > 0 && s.AllLatency.P99Ms <= msOf(burstP99Target)
}

// overloadHeld tells whether an overload burst kept its targets: every
// arrival sent and answered with a token or shed (sold_out would mean the
// stock was too small), the accepted and the shed p99 within target, and
// memory flat.
func (s burstStep) overloadHeld() bool {
	return s.Dropped == 0 && s.ServerErrors == 0 && s.ClientErrors == 0 && s.SoldOut == 0 && s.OK > 0 &&
		s.OKLatency.P99Ms <= msOf(overloadOKP99) && s.ShedLatency.P99Ms <= msOf(overloadShedP99) &&
		s.RSSPeakMB-s.RSSBeforeMB <= overloadRSSGrowth/(1<<20)
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
	fs.IntVar(&p.Conns, "conns", 1024, "connections to each URL, one request at a time each, as a gateway's pool would hold; an arrival waits for a free one, timed from its due time")
	overload := fs.String("overload", "", "after the rates, bursts at these multiples of the capacity, comma-separated, each on a fresh activity of -overload-stock")
	fs.Float64Var(&p.Capacity, "capacity", 0, "arrivals per second the overloads multiply (0: the highest of -rates held with stock)")
	fs.Int64Var(&p.OverloadStock, "overload-stock", 1_000_000, "stock of the activity of each overload")
	if err := fs.Parse(args); err != nil {
		return p, "", err
	}
	var err error
	bad := func(format string, a ...any) (burstPlan, string, error) {
		err := fmt.Errorf(format, a...)
		_, _ = fmt.Fprintln(stderr, "compare -burst:", err)
		return p, "", err
	}
	if fs.NArg() > 0 {
		return bad("unexpected arguments %q", fs.Args())
	}
	if p.Overload, err = parseMultiples(*overload); err != nil {
		return bad("-overload: %v", err)
	}
	if p.Capacity < 0 || p.Capacity > load.MaxBurstRate || p.OverloadStock < 1 || p.OverloadStock > 10_000_000 || p.Conns < 1 || p.Conns > 100_000 {
		return bad("-capacity must be in [0, %d], -overload-stock in [1, 10,000,000], -conns in [1, 100,000]", load.MaxBurstRate)
	}
	if p.Duration <= 0 || p.Duration > time.Minute || p.Stock < 1 || p.Stock > 10_000_000 || p.Pause < 0 || p.Pause > time.Minute ||
		p.Timeout <= 0 || p.Timeout > time.Minute || p.MaxOutstanding < 1 || p.MaxOutstanding > 1_000_000 {
		return bad("-d must be in (0, 1m], -stock in [1, 10,000,000], -pause in [0, 1m], -timeout in (0, 1m], -max-outstanding in [1, 1,000,000]")
	}
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

// parseMultiples reads comma-separated multiples of the capacity, each in
// (0, 100]; none when v is empty.
func parseMultiples(v string) ([]float64, error) {
	if v == "" {
		return nil, nil
	}
	var out []float64
	for _, f := range strings.Split(v, ",") {
		m, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || !(m > 0 && m <= 100) {
			return nil, fmt.Errorf("%q: want multiples of the capacity in (0, 100], comma-separated", v)
		}
		out = append(out, m)
	}
	return out, nil
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
	capacity := p.Capacity
	if capacity == 0 && len(p.Overload) > 0 {
		held, _ := highestHeld(steps, false)
		if held == 0 {
			return steps, errors.New("overload: no burst rate was held with stock, so there is no capacity to multiply (give one)")
		}
		capacity = float64(held)
	}
	for _, m := range p.Overload {
		rate := int(math.Round(m * capacity))
		if rate < 1 || rate > load.MaxBurstRate {
			return steps, fmt.Errorf("overload %g× of %.0f arrivals/s: the rate %d/s is out of range", m, capacity, rate)
		}
		if len(steps) > 0 {
			if err := load.Sleep(ctx, p.Pause); err != nil {
				return steps, err
			}
		}
		o := p
		o.Stock = p.OverloadStock
		s, err := runBurstStep(ctx, svc, o, rate, false, users)
		if err != nil {
			return steps, fmt.Errorf("overload %g× (%d/s): %w", m, rate, err)
		}
		s.Overload = m
		steps = append(steps, s)
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
	before, err := svc.rss(ctx)
	if err != nil {
		return burstStep{}, err
	}
	peak := watchRSS(ctx, svc)
	r, err := load.RunBurst(ctx, load.Burst{URLs: endpoints(p.Bases, joinPath(id)), Rate: rate, Duration: p.Duration,
		UserPrefix: users, Timeout: p.Timeout, MaxOutstanding: p.MaxOutstanding, Conns: p.Conns})
	most, readings := peak()
	if err != nil {
		return burstStep{}, err
	}
	// One reading more once the burst is over: the service's memory
	// rarely shrinks, so it still shows what the burst grew, and a burst
	// that kept the service too busy to answer /metrics is measured all the
	// same.
	if after, rerr := svc.rss(ctx); rerr == nil {
		most, readings = max(most, after), readings+1
	}
	if readings == 0 {
		return burstStep{}, errors.New("no reading of the service's memory during or after the burst")
	}
	if err := ctx.Err(); err != nil {
		return burstStep{}, err // cut short: not a measurement
	}
	return burstStep{
		Rate: rate, SoldOutBefore: soldOut, Activity: id, Stock: stock, DurationSec: p.Duration.Seconds(),
		Sent: r.Sent, Dropped: r.Dropped, OK: r.OK, SoldOut: r.SoldOut, Shed: r.Shed,
		ServerErrors: r.ServerErrors(), ClientErrors: r.ClientErrors(), Other: r.Other,
		MaxOutstanding: r.MaxOutstanding, MaxLagMs: msOf(r.MaxLag), ElapsedSec: r.Elapsed.Seconds(),
		OKLatency: newLatencyMs(r.OKLatency), SoldOutLatency: newLatencyMs(r.SoldOutLatency), ShedLatency: newLatencyMs(r.ShedLatency),
		AllLatency:  newLatencyMs(r.AllLatency),
		RSSBeforeMB: before / (1 << 20), RSSPeakMB: max(before, most) / (1 << 20),
	}, nil
}

// watchRSS reads the service's resident memory every 100 ms until the
// function it returns is called, which returns the most it read and how
// many readings succeeded (a burst may keep the service too busy to
// answer).
func watchRSS(ctx context.Context, svc *service) func() (float64, int) {
	ctx, cancel := context.WithCancel(ctx)
	type result struct {
		most float64
		n    int
	}
	done := make(chan result, 1)
	go func() {
		var r result
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				done <- r
				return
			case <-t.C:
				if v, err := svc.rss(ctx); err == nil {
					r.most, r.n = max(r.most, v), r.n+1
				}
			}
		}
	}()
	return func() (float64, int) {
		cancel()
		r := <-done
		return r.most, r.n
	}
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
	b.WriteString("\t\t\t\t\t\t\t5xx+\tother\t200\t\t\t\tsold-out\t\t\t\tshed\t\tall\tmax in\tmax\tRSS MB\n")
	b.WriteString("rate/s\tactivity\tsent\tdropped\t200\tsold-out\tshed\tfailed\t4xx\tp50\tp99\tp99.9\tmax\tp50\tp99\tp99.9\tmax\tp50\tp99\tp99\tprogress\tlag\tbefore → peak\n")
	for _, s := range steps {
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f → %.0f\n", commas(int64(s.Rate)), s.activity(),
			commas(s.Sent), commas(s.Dropped), commas(s.OK), commas(s.SoldOut), commas(s.Shed), commas(s.ServerErrors), commas(s.ClientErrors),
			s.OKLatency.cells(), s.SoldOutLatency.cells(),
			latencyCell(s.ShedLatency.Count, s.ShedLatency.P50Ms), latencyCell(s.ShedLatency.Count, s.ShedLatency.P99Ms),
			latencyCell(s.AllLatency.Count, s.AllLatency.P99Ms), commas(s.MaxOutstanding), ms(s.MaxLagMs), s.RSSBeforeMB, s.RSSPeakMB)
	}
	for _, s := range steps {
		if len(s.Other) > 0 {
			fmt.Fprintf(&b, "    %s/s %s: %s\n", commas(int64(s.Rate)), s.activity(), counts(s.Other))
		}
	}
	b.WriteString("max lag: the most a request was sent after its due time (the generator's own delay, counted in the latencies).\n")
	for _, soldOut := range []bool{false, true} {
		best, ran := highestHeld(steps, soldOut)
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
	for _, s := range steps {
		if s.Overload == 0 {
			continue
		}
		verdict := "PASS"
		if !s.overloadHeld() {
			verdict = "MISS"
		}
		fmt.Fprintf(&b, "overload %g× capacity (%s/s): accepted p99 %s (≤ %v), shed p99 %s (≤ %v), RSS %+.0f MB (≤ %d MB), every answer a token or shed: %s\n",
			s.Overload, commas(int64(s.Rate)), latencyCell(s.OKLatency.Count, s.OKLatency.P99Ms), overloadOKP99,
			latencyCell(s.ShedLatency.Count, s.ShedLatency.P99Ms), overloadShedP99, s.RSSPeakMB-s.RSSBeforeMB, overloadRSSGrowth>>20, verdict)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if _, err := tw.Write(b.Bytes()); err != nil {
		return err
	}
	return tw.Flush()
}

// highestHeld is the highest rate held among the steps with stock, or
// sold out, the overloads aside (0 when none was held), and whether there
// was any such step.
func highestHeld(steps []burstStep, soldOut bool) (best int, ran bool) {
	for _, s := range steps {
		if s.SoldOutBefore == soldOut && s.Overload == 0 {
			ran = true
			if s.held() {
				best = max(best, s.Rate)
			}
		}
	}
	return best, ran
}

func (s burstStep) activity() string {
	switch {
	case s.SoldOutBefore:
		return "sold out"
	case s.Overload > 0:
		return fmt.Sprintf("stock %s, %g× capacity", commas(s.Stock), s.Overload)
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
