package main

import (
	"bufio"
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
	"time"

	"seckill/loadtest/load"
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
	P50Ms         float64 `json:"p50Ms"`
	P99Ms         float64 `json:"p99Ms"`
	MaxMs         float64 `json:"maxMs"`
	// Redis counted server-wide right before and right after the run.
	Redis redisDelta `json:"redis"`
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
}

func newRun(res *load.Result, rd redisDelta) *runResult {
	return &runResult{
		Requests: res.Requests, OK: res.OK, SoldOut: res.SoldOut, Errors: res.Errors(), Other: res.Other,
		ElapsedSec:  res.Elapsed.Seconds(),
		JoinsPerSec: res.PerSec(res.Answers()), AnswersPerSec: res.PerSec(res.Requests),
		P50Ms: msOf(res.Percentile(0.50)), P99Ms: msOf(res.Percentile(0.99)), MaxMs: msOf(res.Percentile(1)),
		Redis: rd,
	}
}

func newResult(key, name, short, title string, stock int64, res *load.Result, rd redisDelta) *designResult {
	r := &designResult{Key: key, Name: name, Short: short, Title: title, Stock: stock, runResult: *newRun(res, rd)}
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
		f.Close()
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
	joins := func(k string) (float64, bool) {
		d, ok := by[k]
		if !ok || d.JoinsPerSec == 0 {
			return 0, false
		}
		return d.JoinsPerSec, true
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
	f, okF := joins("f")
	for _, t := range []struct {
		k      string
		target float64
	}{{"a", 3}, {"b", 10}, {"g", 0.5}} {
		v, ok := joins(t.k)
		add("f/"+t.k+" joins/s", f, v, okF, ok, "≥", t.target, "needs f and "+t.k)
	}
	var fSoldOut float64
	if d := by["f"]; d != nil && d.SoldOutRun != nil {
		fSoldOut = d.SoldOutRun.JoinsPerSec
	}
	g, okG := joins("g")
	add("f sold-out answers/s ÷ g", fSoldOut, g, fSoldOut > 0, okG, "≥", 0.8, "needs f's sold-out run and g")
	if d := by["f"]; d != nil && d.OK > 0 {
		add("f Redis requests per token", d.Redis.requests(d.ElapsedSec), float64(d.OK), true, true, "≤", 2, "")
	} else {
		add("f Redis requests per token", 0, 0, false, false, "≤", 2, "needs f with tokens")
	}
	for _, k := range []string{"c", "d", "e"} {
		v, ok := joins(k)
		add("f/"+k+" joins/s", f, v, okF, ok, "", 0, "needs f and "+k)
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

func (r *report) print(w io.Writer) {
	c := r.Config
	soldOut := "sold-out runs: stock 1, already sold out, " + c.SoldOutDuration + " each"
	if c.SoldOutDuration == "0s" {
		soldOut = "sold-out runs skipped"
	}
	fmt.Fprintf(w, "\nseckill comparison: %d connections, closed loop, %s per design, stock %s (%s)\n",
		c.Conns, c.Duration, commas(c.Stock), soldOut)
	m := r.Machine
	fmt.Fprintf(w, "machine: %d CPUs, %s RAM, %s, %s, Redis %s, MariaDB %s; load average %s at the start, %s at the end\n\n",
		m.CPUs, m.MemTotal, m.OS, m.Go, m.Redis, m.MariaDB, m.LoadAvgStart, m.LoadAvgEnd)
	fmt.Fprintf(w, "    %-26s %9s %8s %9s %7s %8s %9s %9s %9s %8s %13s\n",
		"design", "joins/s", "ok", "sold-out", "errors", "ok/s¹", "p50", "p99", "oversold", "unsold²", "redis req/ok³")
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
		fmt.Fprintf(w, "(%s) %-26s %9s %8s %9s %7s %8s %9s %9s %9s %8s %13s\n", d.Key, d.Short,
			commas(int64(d.JoinsPerSec+0.5)), commas(d.OK), commas(d.SoldOut), commas(d.Errors), commas(int64(d.OKPerSec+0.5)),
			ms(d.P50Ms), ms(d.P99Ms), over, unsold, rt)
	}
	fmt.Fprintln(w, "joins/s: tokens + sold-out answers per second. errors: every other answer (see below).")
	fmt.Fprintln(w, "¹ tokens per second while the stock lasted (up to the last token when the run sold out).")
	fmt.Fprintln(w, "² stock − records after the run, a settle wait and selling what was left one join at a time; – when the run did not sell out.")
	fmt.Fprintln(w, "³ Redis requests per token: the larger of network round trips (INFO stats total_reads_processed, server-wide, less the")
	fmt.Fprintln(w, "  background rate measured in the pause before the run) and script calls (EVALSHA/EVAL in INFO commandstats, less theirs).")
	for _, d := range r.Designs {
		if len(d.Other) > 0 {
			fmt.Fprintf(w, "    (%s) errors: %s\n", d.Key, counts(d.Other))
		}
	}

	if hasSoldOut(r.Designs) {
		fmt.Fprintf(w, "\nsold out (an activity of stock 1, already sold out), %s each:\n", c.SoldOutDuration)
		fmt.Fprintf(w, "    %-26s %10s %9s %9s %7s %17s\n", "design", "answers/s", "p50", "p99", "errors", "redis req/answer")
		for _, d := range r.Designs {
			s := d.SoldOutRun
			if s == nil {
				continue
			}
			rt := "–"
			if s.Requests > 0 {
				rt = fmt.Sprintf("%.2f", s.Redis.requests(s.ElapsedSec)/float64(s.Requests))
			}
			fmt.Fprintf(w, "(%s) %-26s %10s %9s %9s %7s %17s\n", d.Key, d.Short, commas(int64(s.JoinsPerSec+0.5)),
				ms(s.P50Ms), ms(s.P99Ms), commas(s.Errors), rt)
		}
	}

	fmt.Fprintf(w, "\nratios (this run, %d connections):\n", c.Conns)
	for _, q := range r.Ratios {
		switch {
		case q.Missing != "":
			fmt.Fprintf(w, "  %-34s %8s   (%s)\n", q.Name, "–", q.Missing)
		case q.Pass == nil:
			fmt.Fprintf(w, "  %-34s %8.2f\n", q.Name, q.Value)
		default:
			verdict := "MISS"
			if *q.Pass {
				verdict = "PASS"
			}
			fmt.Fprintf(w, "  %-34s %8.2f   target %s %-4g %s\n", q.Name, q.Value, q.Op, q.Target, verdict)
		}
	}
	for _, d := range r.Designs {
		if d.Key != "f" || d.OK == 0 {
			continue
		}
		rd := d.Redis
		tok := float64(d.OK)
		req, net := rd.requests(d.ElapsedSec), rd.net(d.ElapsedSec)
		fmt.Fprintf(w, "\nRedis during (f)'s run (server-wide counters right before and right after it), %s tokens:\n", commas(d.OK))
		fmt.Fprintf(w, "  requests             %9.2f per token: the larger of the two lines below; the target is judged on it\n", req/tok)
		scripts := max(0, float64(rd.ScriptCalls)-rd.BackgroundScriptsPerSec*d.ElapsedSec)
		fmt.Fprintf(w, "  script calls         %9s = %.2f per token (EVALSHA/EVAL in INFO commandstats less the background: claim.lua and confirm.lua per join, the job's)\n",
			commas(int64(scripts+0.5)), scripts/tok)
		fmt.Fprintf(w, "  network round trips  %9s = %.2f per token (INFO stats total_reads_processed less the background; pipelined calls share one)\n",
			commas(int64(net+0.5)), net/tok)
		fmt.Fprintf(w, "  background           %9.0f round trips/s and %.0f script calls/s before the run (other clients of this Redis, the idle service)\n",
			rd.BackgroundPerSec, rd.BackgroundScriptsPerSec)
		if s := d.SoldOutRun; s != nil && s.Requests > 0 && d.SoldOut > 0 {
			per := s.Redis.requests(s.ElapsedSec) / float64(s.Requests)
			fmt.Fprintf(w, "  sold-out answers     %9s in the run, at the sold-out run's %.3f requests each: ~%s\n",
				commas(d.SoldOut), per, commas(int64(per*float64(d.SoldOut)+0.5)))
		}
		fmt.Fprintf(w, "  INFO commandstats    %9s calls = %.2f per token, counting every redis.call inside a script too:\n",
			commas(rd.Commands), float64(rd.Commands)/tok)
		fmt.Fprintf(w, "    %s\n", counts(rd.ByCommand))
	}
	if len(r.Problems) > 0 {
		fmt.Fprintln(w, "\nproblems:")
		for _, p := range r.Problems {
			level := "note "
			if p.Error {
				level = "ERROR"
			}
			fmt.Fprintf(w, "  %s (%s) %s\n", level, p.Design, p.Message)
		}
	}
	for _, d := range r.Designs {
		for _, n := range d.Notes {
			fmt.Fprintf(w, "  note  (%s) %s\n", d.Key, n)
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
