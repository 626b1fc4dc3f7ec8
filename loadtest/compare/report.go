package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// runResult is one timed run of one endpoint.
type runResult struct {
	Requests   int64            `json:"requests"`
	OK         int64            `json:"ok"`
	SoldOut    int64            `json:"soldOut"`
	Errors     int64            `json:"errors"`
	Other      map[string]int64 `json:"other,omitempty"`
	ElapsedSec float64          `json:"elapsedSec"`
	// JoinsPerSec counts tokens and sold-out answers; AnswersPerSec every
	// answer.
	JoinsPerSec   float64 `json:"joinsPerSec"`
	AnswersPerSec float64 `json:"answersPerSec"`
	MeanMs        float64 `json:"meanMs"`
	P50Ms         float64 `json:"p50Ms"`
	P99Ms         float64 `json:"p99Ms"`
	MaxMs         float64 `json:"maxMs"`
	// Redis counted server-wide right before and right after the run.
	Redis redisDelta `json:"redis"`
	// CPU is the CPU time used during the run.
	CPU cpuUse `json:"cpu"`
}

// designResult is one row of the table.
type designResult struct {
	Key   string `json:"key"`
	Name  string `json:"name"`
	Short string `json:"short"`
	Title string `json:"title"`
	Stock int64  `json:"stock"`
	runResult
	// OKPerSec is tokens per second while the stock lasted: up to the last
	// token when the run sold out, over the whole run otherwise.
	OKPerSec float64 `json:"okPerSec"`
	// SoldOutAtSec is when the first sold-out answer came (0: never).
	SoldOutAtSec float64 `json:"soldOutAtSec"`
	// Records are the valid participation records after the settle wait.
	Records  *int64 `json:"records,omitempty"`
	Oversold int64  `json:"oversold"`
	// Unsold is stock − records after a sell-out (nil: not sold out).
	Unsold *int64 `json:"unsold,omitempty"`
	// Drained are the tokens sold one at a time after the run.
	Drained    int64      `json:"drained"`
	MySQLStock *int64     `json:"mysqlStock,omitempty"`
	Stats      *stats     `json:"serviceStats,omitempty"`
	SoldOutRun *runResult `json:"soldOutRun,omitempty"`
	Notes      []string   `json:"notes,omitempty"`
	// Budget is the latency budget of (f)'s joins, from its metrics.
	Budget []stageBudget `json:"budget,omitempty"`
	// Burst are (f)'s open-loop bursts.
	Burst []burstStep `json:"burst,omitempty"`
}

func newRun(m *measured) *runResult {
	res := m.res
	return &runResult{
		Requests: res.Requests, OK: res.OK, SoldOut: res.SoldOut, Errors: res.Errors(), Other: res.Other,
		ElapsedSec:  res.Elapsed.Seconds(),
		JoinsPerSec: res.PerSec(res.Answers()), AnswersPerSec: res.PerSec(res.Requests),
		MeanMs: msOf(res.Mean()), P50Ms: msOf(res.Percentile(0.50)), P99Ms: msOf(res.Percentile(0.99)), MaxMs: msOf(res.Percentile(1)),
		Redis: m.redis, CPU: m.cpu,
	}
}

func newResult(key, name, short, title string, stock int64, m *measured) *designResult {
	res := m.res
	r := &designResult{Key: key, Name: name, Short: short, Title: title, Stock: stock, runResult: *newRun(m)}
	r.OKPerSec = res.PerSec(res.OK)
	if res.SoldOut > 0 && res.LastOK > 0 {
		r.OKPerSec = float64(res.OK) / res.LastOK.Seconds()
	}
	r.SoldOutAtSec = res.FirstSoldOut.Seconds()
	return r
}

func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type problem struct {
	Error   bool   `json:"error"`
	Design  string `json:"design"`
	Message string `json:"message"`
}

type machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	MemTotal   string `json:"memTotal"`
	OS         string `json:"os"`
	Go         string `json:"go"`
	Redis      string `json:"redis"`
	MariaDB    string `json:"mariadb"`
	// LoadAvg is /proc/loadavg when the harness started and ended: the
	// machine may be shared, and other work skews every number.
	LoadAvgStart string `json:"loadAvgStart"`
	LoadAvgEnd   string `json:"loadAvgEnd"`
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func (h *harness) describeMachine(ctx context.Context) machine {
	m := machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), OS: runtime.GOOS + "/" + runtime.GOARCH,
		Go: runtime.Version(), LoadAvgStart: loadAvg()}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				m.MemTotal = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
		_ = f.Close() // read to the end above
	}
	if info, err := h.rdb.Info(ctx, "server").Result(); err == nil {
		for _, l := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "redis_version:"); ok {
				m.Redis = v
			}
		}
	}
	_ = h.admin.QueryRowContext(ctx, "SELECT VERSION()").Scan(&m.MariaDB)
	return m
}

type ratio struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Op     string  `json:"op,omitempty"`
	Target float64 `json:"target,omitempty"`
	// Pass is set for ratios with a target that could be computed.
	Pass *bool `json:"pass,omitempty"`
	// Missing names what was not measured, when the ratio could not be
	// computed.
	Missing string `json:"missing,omitempty"`
}

type report struct {
	GeneratedAt time.Time `json:"generatedAt"`
	Machine     machine   `json:"machine"`
	Config      struct {
		Conns           int    `json:"conns"`
		Duration        string `json:"duration"`
		SoldOutDuration string `json:"soldOutDuration"`
		Stock           int64  `json:"stock"`
		Designs         string `json:"designs"`
	} `json:"config"`
	Designs  []*designResult `json:"designs"`
	Ratios   []ratio         `json:"ratios"`
	Problems []problem       `json:"problems"`
}

func (h *harness) report() *report {
	r := &report{GeneratedAt: time.Now().UTC().Truncate(time.Second), Machine: h.machine, Designs: h.results, Problems: h.problems}
	r.Machine.LoadAvgEnd = loadAvg()
	r.Config.Conns = h.cfg.conns
	r.Config.Duration = h.cfg.duration.String()
	r.Config.SoldOutDuration = h.cfg.soldOutDuration.String()
	r.Config.Stock = h.cfg.stock
	r.Config.Designs = h.cfg.designs
	if r.Problems == nil {
		r.Problems = []problem{}
	}
	by := map[string]*designResult{}
	for _, d := range h.results {
		by[d.Key] = d
	}
	// Tokens per second over the whole run (up to the last token when it
	// sold out); the ceiling's every answer is a 200.
	tokens := func(k string) (float64, bool) {
		d, ok := by[k]
		if !ok || d.OKPerSec == 0 {
			return 0, false
		}
		return d.OKPerSec, true
	}
	add := func(name string, num, den float64, okNum, okDen bool, op string, target float64, missing string) {
		q := ratio{Name: name, Op: op, Target: target}
		if !okNum || !okDen || den == 0 {
			q.Missing = missing
		} else {
			q.Value = num / den
			if op != "" {
				pass := q.Value >= target
				if op == "≤" {
					pass = q.Value <= target
				}
				q.Pass = &pass
			}
		}
		r.Ratios = append(r.Ratios, q)
	}
	f, okF := tokens("f")
	for _, t := range []struct {
		k      string
		target float64
	}{{"g", 0.5}, {"a", 10}, {"b", 10}} {
		v, ok := tokens(t.k)
		add("f/"+t.k+" tokens/s", f, v, okF, ok, "≥", t.target, "needs f and "+t.k)
	}
	var fSoldOut float64
	if d := by["f"]; d != nil && d.SoldOutRun != nil {
		fSoldOut = d.SoldOutRun.JoinsPerSec
	}
	g, okG := tokens("g")
	add("f sold-out answers/s ÷ g", fSoldOut, g, fSoldOut > 0, okG, "≥", 0.9, "needs f's sold-out run and g")
	if d := by["f"]; d != nil && d.OK > 0 {
		add(fmt.Sprintf("f join p99 in ms, %d connections", h.cfg.conns), d.P99Ms, 1, true, true, "≤", 20, "")
		add("f Redis requests per token", d.Redis.requests(d.ElapsedSec), float64(d.OK), true, true, "≤", 2, "")
	} else {
		add(fmt.Sprintf("f join p99 in ms, %d connections", h.cfg.conns), 0, 0, false, false, "≤", 20, "needs f with tokens")
		add("f Redis requests per token", 0, 0, false, false, "≤", 2, "needs f with tokens")
	}
	for _, k := range []string{"c", "d", "e"} {
		v, ok := tokens(k)
		add("f/"+k+" tokens/s", f, v, okF, ok, "", 0, "needs f and "+k)
	}
	return r
}

func (r *report) errors() int {
	n := 0
	for _, p := range r.Problems {
		if p.Error {
			n++
		}
	}
	return n
}

func (r *report) write(path string) error {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// print writes the report as tables: the run, the designs, the sold-out
// runs, the ratios, Redis during (f)'s run, the problems. It returns the
// error of writing to w.
func (r *report) print(w io.Writer) error {
	var b bytes.Buffer
	for _, section := range []func(*bytes.Buffer){r.printRun, r.printDesigns, r.printSoldOut, r.printRatios, r.printBudget, r.printCPU, r.printBurst, r.printRedis, r.printProblems} {
		section(&b)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if _, err := tw.Write(b.Bytes()); err != nil {
		return err
	}
	return tw.Flush()
}

func (r *report) printRun(b *bytes.Buffer) {
	c := r.Config
	soldOut := "sold-out runs: stock 1, already sold out, " + c.SoldOutDuration + " each"
	if c.SoldOutDuration == "0s" {
		soldOut = "sold-out runs skipped"
	}
	fmt.Fprintf(b, "\nseckill comparison: %d connections, closed loop, %s per design, stock %s (%s)\n",
		c.Conns, c.Duration, commas(c.Stock), soldOut)
	m := r.Machine
	fmt.Fprintf(b, "machine: %d CPUs, %s RAM, %s, %s, Redis %s, MariaDB %s; load average %s at the start, %s at the end\n",
		m.CPUs, m.MemTotal, m.OS, m.Go, m.Redis, m.MariaDB, m.LoadAvgStart, m.LoadAvgEnd)
}

func (r *report) printDesigns(b *bytes.Buffer) {
	b.WriteString("\n\tdesign\tjoins/s\tok\tsold-out\terrors\tok/s¹\tp50\tp99\toversold\tunsold²\tredis req/ok³\tcpu µs/ok⁴\n")
	for _, d := range r.Designs {
		over, unsold := "–", "–"
		if d.Records != nil {
			over = commas(d.Oversold)
		}
		if d.Unsold != nil {
			unsold = commas(*d.Unsold)
		}
		rt := "–"
		if d.OK > 0 {
			rt = fmt.Sprintf("%.2f", d.Redis.requests(d.ElapsedSec)/float64(d.OK))
		}
		fmt.Fprintf(b, "(%s)\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Key, d.Short,
			commas(int64(d.JoinsPerSec+0.5)), commas(d.OK), commas(d.SoldOut), commas(d.Errors), commas(int64(d.OKPerSec+0.5)),
			ms(d.P50Ms), ms(d.P99Ms), over, unsold, rt, micros(d.CPU.Server, d.OK))
	}
	b.WriteString(`joins/s: tokens + sold-out answers per second. errors: every other answer (see below).
¹ tokens per second while the stock lasted (up to the last token when the run sold out).
² stock − records after the run, a settle wait and selling what was left one join at a time; – when the run did not sell out.
³ Redis requests per token: the larger of network round trips (INFO stats total_reads_processed, server-wide, less the
  background rate measured in the pause before the run) and script calls (EVALSHA/EVAL in INFO commandstats, less theirs).
⁴ CPU time (user + system, from /proc/PID/stat as getrusage counts it) of the process that answered, per token: the
  baseline server (with seed 002's embedded broker) for (a)–(e) and (g), the service alone for (f), whose broker runs apart.
`)
	for _, d := range r.Designs {
		if len(d.Other) > 0 {
			fmt.Fprintf(b, "    (%s) errors: %s\n", d.Key, counts(d.Other))
		}
	}
}

func (r *report) printSoldOut(b *bytes.Buffer) {
	if !hasSoldOut(r.Designs) {
		return
	}
	fmt.Fprintf(b, "\nsold out (an activity of stock 1, already sold out), %s each:\n", r.Config.SoldOutDuration)
	b.WriteString("\tdesign\tanswers/s\tp50\tp99\terrors\tredis req/answer\tcpu µs/answer\n")
	for _, d := range r.Designs {
		s := d.SoldOutRun
		if s == nil {
			continue
		}
		rt := "–"
		if s.Requests > 0 {
			rt = fmt.Sprintf("%.2f", s.Redis.requests(s.ElapsedSec)/float64(s.Requests))
		}
		fmt.Fprintf(b, "(%s)\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Key, d.Short, commas(int64(s.JoinsPerSec+0.5)),
			ms(s.P50Ms), ms(s.P99Ms), commas(s.Errors), rt, micros(s.CPU.Server, s.Requests))
	}
}

func (r *report) printRatios(b *bytes.Buffer) {
	fmt.Fprintf(b, "\nratios (this run, %d connections):\n", r.Config.Conns)
	for _, q := range r.Ratios {
		switch {
		case q.Missing != "":
			fmt.Fprintf(b, "  %s\t–\t(%s)\n", q.Name, q.Missing)
		case q.Pass == nil:
			fmt.Fprintf(b, "  %s\t%.2f\n", q.Name, q.Value)
		default:
			verdict := "MISS"
			if *q.Pass {
				verdict = "PASS"
			}
			fmt.Fprintf(b, "  %s\t%.2f\ttarget %s %g\t%s\n", q.Name, q.Value, q.Op, q.Target, verdict)
		}
	}
}

// printBudget is where the time of (f)'s joins went, from the service's
// histograms over the run.
func (r *report) printBudget(b *bytes.Buffer) {
	for _, d := range r.Designs {
		if d.Key != "f" || len(d.Budget) == 0 {
			continue
		}
		fmt.Fprintf(b, "\nlatency budget of a join in (f)'s run (means; the stages from the service's metrics):\n")
		fmt.Fprintf(b, "  round trip\t%s\tmean as the load generator saw it (p50 %s, p99 %s)\n", ms(d.MeanMs), ms(d.P50Ms), ms(d.P99Ms))
		var handler, stages float64
		for _, st := range d.Budget {
			if st.Stage == "handler" {
				handler = st.MeanMs
				continue
			}
			stages += st.MeanMs * float64(st.Count)
		}
		if handler > 0 {
			fmt.Fprintf(b, "  HTTP and network\t%s\tround trip less the handler: reading the request, writing the answer, the network, queueing for a CPU\n", ms(max(0, d.MeanMs-handler)))
			fmt.Fprintf(b, "  handler\t%s\tseckill_join_duration_seconds\n", ms(handler))
		}
		for _, st := range d.Budget {
			if st.Stage != "handler" {
				fmt.Fprintf(b, "    %s\t%s\tseckill_join_stage_duration_seconds{stage=%q}, %s joins\n", st.Stage, ms(st.MeanMs), st.Stage, commas(st.Count))
			}
		}
		if handler > 0 && d.Requests > 0 {
			// Stages are counted for the joins that got that far: spread
			// over every join of the run, what is left is the handler's own
			// work around them (reading and checking the body, the limits).
			fmt.Fprintf(b, "    the rest\t%s\tthe handler's own work around the stages: reading and checking the body, the limits\n", ms(max(0, handler-stages/float64(d.Requests))))
		}
	}
}

// printBurst is the table of (f)'s open-loop bursts.
func (r *report) printBurst(b *bytes.Buffer) {
	for _, d := range r.Designs {
		if d.Key == "f" && len(d.Burst) > 0 {
			_ = printBurst(b, d.Burst) // a bytes.Buffer takes every write
		}
	}
}

// printCPU breaks down the CPU time of (f)'s run by process.
func (r *report) printCPU(b *bytes.Buffer) {
	for _, d := range r.Designs {
		if d.Key != "f" || d.OK == 0 {
			continue
		}
		fmt.Fprintf(b, "\nCPU during (f)'s run, per token (%s tokens in %.1fs):\n", commas(d.OK), d.ElapsedSec)
		for _, row := range []struct {
			name string
			sec  *float64
			what string
		}{
			{"service", d.CPU.Server, "the service's process (/proc/PID/stat utime + stime)"},
			{"broker", d.CPU.Broker, "seckill broker, its own process"},
			{"redis", d.CPU.Redis, "INFO cpu used_cpu_user + used_cpu_sys (server-wide)"},
			{"mysql", d.CPU.MySQL, "the MariaDB/MySQL server's process on this machine (server-wide)"},
			{"machine", d.CPU.Machine, "every core busy (/proc/stat): these, the load generator and all else"},
		} {
			if row.sec == nil {
				fmt.Fprintf(b, "  %s\t–\t%s: not readable here\n", row.name, row.what)
				continue
			}
			fmt.Fprintf(b, "  %s\t%s µs\t%.2f cores; %s\n", row.name, micros(row.sec, d.OK), *row.sec/d.ElapsedSec, row.what)
		}
	}
}

// printRedis breaks down the Redis requests of (f)'s run.
func (r *report) printRedis(b *bytes.Buffer) {
	for _, d := range r.Designs {
		if d.Key != "f" || d.OK == 0 {
			continue
		}
		rd := d.Redis
		tok := float64(d.OK)
		req, net := rd.requests(d.ElapsedSec), rd.net(d.ElapsedSec)
		scripts := max(0, float64(rd.ScriptCalls)-rd.BackgroundScriptsPerSec*d.ElapsedSec)
		fmt.Fprintf(b, "\nRedis during (f)'s run (server-wide counters right before and right after it), %s tokens:\n", commas(d.OK))
		fmt.Fprintf(b, "  requests\t%.2f\tper token: the larger of the two lines below; the target is judged on it\n", req/tok)
		fmt.Fprintf(b, "  script calls\t%s\t= %.2f per token (EVALSHA/EVAL in INFO commandstats less the background: claim.lua and confirm.lua per join, the job's)\n",
			commas(int64(scripts+0.5)), scripts/tok)
		fmt.Fprintf(b, "  network round trips\t%s\t= %.2f per token (INFO stats total_reads_processed less the background; pipelined calls share one)\n",
			commas(int64(net+0.5)), net/tok)
		fmt.Fprintf(b, "  background\t%.0f\tround trips/s and %.0f script calls/s before the run (other clients of this Redis, the idle service)\n",
			rd.BackgroundPerSec, rd.BackgroundScriptsPerSec)
		if s := d.SoldOutRun; s != nil && s.Requests > 0 && d.SoldOut > 0 {
			per := s.Redis.requests(s.ElapsedSec) / float64(s.Requests)
			fmt.Fprintf(b, "  sold-out answers\t%s\tin the run, at the sold-out run's %.3f requests each: ~%s\n",
				commas(d.SoldOut), per, commas(int64(per*float64(d.SoldOut)+0.5)))
		}
		fmt.Fprintf(b, "  INFO commandstats\t%s\tcalls = %.2f per token, counting every redis.call inside a script too:\n",
			commas(rd.Commands), float64(rd.Commands)/tok)
		fmt.Fprintf(b, "    %s\n", counts(rd.ByCommand))
	}
}

// printProblems lists the errors and notes of the run.
func (r *report) printProblems(b *bytes.Buffer) {
	if len(r.Problems) > 0 {
		b.WriteString("\nproblems:\n")
		for _, p := range r.Problems {
			level := "note "
			if p.Error {
				level = "ERROR"
			}
			fmt.Fprintf(b, "  %s (%s) %s\n", level, p.Design, p.Message)
		}
	}
	for _, d := range r.Designs {
		for _, n := range d.Notes {
			fmt.Fprintf(b, "  note  (%s) %s\n", d.Key, n)
		}
	}
}

func hasSoldOut(ds []*designResult) bool {
	for _, d := range ds {
		if d.SoldOutRun != nil {
			return true
		}
	}
	return false
}

// counts formats a map of counters, largest first.
func counts(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " " + commas(m[k])
	}
	return strings.Join(parts, ", ")
}

// micros formats the microseconds of sec per one of n, "–" when unknown.
func micros(sec *float64, n int64) string {
	v, ok := perOp(sec, n)
	if !ok {
		return "–"
	}
	return fmt.Sprintf("%.0f", v)
}

func ms(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.2fms", v)
	}
	return fmt.Sprintf("%.1fms", v)
}

func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
