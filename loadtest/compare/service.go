package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// service drives the real service through its admin API.
type service struct {
	url, token string
	client     *http.Client
}

// stats are the live counters of an activity (API.md).
type stats struct {
	Claimed  int64 `json:"claimed"`
	InFlight int64 `json:"inFlight"`
	Issued   int64 `json:"issued"`
	Recorded int64 `json:"recorded"`
	Surplus  int64 `json:"surplus"`
}

func (s *service) do(ctx context.Context, method, path, body string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = res.Body.Close() }() // read to the end below
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// openActivity creates, approves and opens an activity with the given stock
// and returns its id.
func (s *service) openActivity(ctx context.Context, name string, stock int64) (int64, error) {
	now := time.Now().UTC()
	body := fmt.Sprintf(`{"name":%q,"stock":%d,"perUserLimit":1,"beginAt":%q,"endAt":%q}`, name, stock,
		now.Add(-time.Minute).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	var a struct {
		ID int64 `json:"id"`
	}
	if err := s.do(ctx, http.MethodPost, "/api/v1/admin/activities", body, &a); err != nil {
		return 0, err
	}
	for _, step := range []string{"approve", "open"} {
		if err := s.do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/admin/activities/%d/%s", a.ID, step), "", nil); err != nil {
			return 0, err
		}
	}
	return a.ID, nil
}

func (s *service) stats(ctx context.Context, id int64) (stats, error) {
	var a struct {
		Stats *stats `json:"stats"`
	}
	if err := s.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/admin/activities/%d", id), "", &a); err != nil {
		return stats{}, err
	}
	if a.Stats == nil {
		return stats{}, fmt.Errorf("activity %d: no stats in the answer", id)
	}
	return *a.Stats, nil
}

// settle waits until claimed = issued = recorded and nothing is in flight,
// or the timeout passes; it returns the last stats read and whether they
// settled.
func (s *service) settle(ctx context.Context, id int64, timeout time.Duration) (stats, bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		st, err := s.stats(ctx, id)
		if err != nil {
			return st, false, err
		}
		if st.Claimed == st.Issued && st.Issued == st.Recorded && st.InFlight == 0 {
			return st, true, nil
		}
		if time.Now().After(deadline) {
			return st, false, nil
		}
		select {
		case <-ctx.Done():
			return st, false, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// buildService builds ./cmd/seckill of the module into dir and returns the
// binary's path.
func buildService(ctx context.Context, dir string) (string, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	// Not named seckill: a pkill of someone else's service on a shared
	// machine should not take this one down mid-run.
	bin := filepath.Join(dir, "svc-under-test")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/seckill")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/seckill: %v\n%s", err, out)
	}
	return bin, nil
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w (run from the repository, with go on PATH, or pass -service-bin)", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == "/dev/null" {
		return "", fmt.Errorf("not inside the seckill module: run from the repository or pass -service-bin")
	}
	return filepath.Dir(mod), nil
}

// budgetMetrics are the histograms of the service whose sums and counts
// make the latency budget of a join.
var budgetMetrics = []string{
	"seckill_join_duration_seconds",
	`seckill_join_stage_duration_seconds{stage="claim"}`,
	`seckill_join_stage_duration_seconds{stage="record"}`,
	`seckill_join_stage_duration_seconds{stage="confirm"}`,
}

// histSums reads the _sum and _count of each histogram of budgetMetrics
// from the service's /metrics; a histogram it does not export is missing.
func (s *service) histSums(ctx context.Context) (map[string][2]float64, error) {
	series, err := s.scrape(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][2]float64{}
	for _, m := range budgetMetrics {
		name, labels, _ := strings.Cut(m, "{")
		if labels != "" {
			labels = "{" + labels
		}
		sum, ok1 := series[name+"_sum"+labels]
		count, ok2 := series[name+"_count"+labels]
		if ok1 && ok2 {
			out[m] = [2]float64{sum, count}
		}
	}
	return out, nil
}

// rss is the service's resident memory in bytes, from its
// process_resident_memory_bytes.
func (s *service) rss(ctx context.Context) (float64, error) {
	series, err := s.scrape(ctx)
	if err != nil {
		return 0, err
	}
	v, ok := series["process_resident_memory_bytes"]
	if !ok {
		return 0, errors.New("/metrics: no process_resident_memory_bytes")
	}
	return v, nil
}

// scrape reads the service's /metrics: the value of each series, keyed as
// the text format writes it (name{label="value",...}).
func (s *service) scrape(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	res, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = res.Body.Close() }() // read to the end below
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", res.Status)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("/metrics: %q: %w", line, err)
		}
		out[line[:i]] = v
	}
	return out, nil
}

// stageBudget is the mean time of each stage of a join over a run, from
// the service's histograms (the difference of two readings); a stage the
// service does not measure is missing.
type stageBudget struct {
	Stage  string  `json:"stage"`
	MeanMs float64 `json:"meanMs"`
	Count  int64   `json:"count"`
}

func budgetOf(before, after map[string][2]float64) []stageBudget {
	var out []stageBudget
	for _, m := range budgetMetrics {
		b, okB := before[m]
		a, okA := after[m]
		n := a[1] - b[1]
		if !okB || !okA || n <= 0 {
			continue
		}
		stage := "handler"
		if _, l, ok := strings.Cut(m, `stage="`); ok {
			stage = strings.TrimSuffix(l, `"}`)
		}
		out = append(out, stageBudget{Stage: stage, MeanMs: (a[0] - b[0]) / n * 1000, Count: int64(n)})
	}
	return out
}
