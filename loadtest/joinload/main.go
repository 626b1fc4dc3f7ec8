// Command joinload is a closed-loop load generator for the join endpoint:
// N connections, each sending its next join as soon as the last one is
// answered, for a fixed duration. It creates and opens an activity through
// the admin API (or uses -activity), and prints throughput, latency
// percentiles and the answers by status.
//
//	go run ./loadtest/joinload -url http://127.0.0.1:8080 -token $TOKEN -c 64 -d 10s -stock 1000000
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	var (
		url      = flag.String("url", "http://127.0.0.1:8080", "base URL of the service")
		token    = flag.String("token", os.Getenv("SECKILL_ADMIN_TOKEN"), "admin token (to create the activity)")
		conns    = flag.Int("c", 64, "connections")
		dur      = flag.Duration("d", 10*time.Second, "duration")
		stock    = flag.Int64("stock", 1_000_000, "stock of the activity created")
		activity = flag.Int64("activity", 0, "join this activity instead of creating one")
		path     = flag.String("path", "", "POST this path instead of the join endpoint (e.g. a bare endpoint)")
	)
	flag.Parse()
	if *dur <= 0 || *dur > 10*time.Minute || *conns < 1 || *conns > 4096 {
		fmt.Fprintln(os.Stderr, "joinload: -d must be in (0, 10m] and -c in [1, 4096]")
		os.Exit(2)
	}
	target := *path
	if target == "" {
		id := *activity
		if id == 0 {
			var err error
			if id, err = createActivity(*url, *token, *stock); err != nil {
				fmt.Fprintln(os.Stderr, "joinload:", err)
				os.Exit(1)
			}
		}
		target = fmt.Sprintf("/api/v1/activities/%d/join", id)
	}
	r := run(*url+target, *conns, *dur)
	r.print(os.Stdout, *conns, *dur)
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4096, MaxConnsPerHost: 4096}, Timeout: 10 * time.Second}

func createActivity(url, token string, stock int64) (int64, error) {
	now := time.Now().UTC()
	body := fmt.Sprintf(`{"name":"joinload","stock":%d,"perUserLimit":1,"beginAt":%q,"endAt":%q}`, stock,
		now.Add(-time.Minute).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	var a struct{ ID int64 }
	if err := admin(url+"/api/v1/admin/activities", token, body, &a); err != nil {
		return 0, err
	}
	for _, act := range []string{"approve", "open"} {
		if err := admin(fmt.Sprintf("%s/api/v1/admin/activities/%d/%s", url, a.ID, act), token, "", nil); err != nil {
			return 0, err
		}
	}
	return a.ID, nil
}

func admin(url, token, body string, out any) error {
	req, _ := http.NewRequest("POST", url, bytes.NewBufferString(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %d %s", url, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

type result struct {
	n         int64
	latencies []time.Duration
	byStatus  map[int]int64
	elapsed   time.Duration
}

func run(url string, conns int, dur time.Duration) result {
	var seq atomic.Int64
	type worker struct {
		lat    []time.Duration
		status map[int]int64
	}
	ws := make([]worker, conns)
	deadline := time.Now().Add(dur)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &ws[i]
			w.status = map[int]int64{}
			buf := make([]byte, 0, 64)
			for time.Now().Before(deadline) {
				buf = append(buf[:0], `{"userId":"load-`...)
				buf = strconv.AppendInt(buf, seq.Add(1), 10)
				buf = append(buf, `"}`...)
				t0 := time.Now()
				resp, err := client.Post(url, "application/json", bytes.NewReader(buf))
				code := 0
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
				}
				w.lat = append(w.lat, time.Since(t0))
				w.status[code]++
			}
		}()
	}
	wg.Wait()
	r := result{byStatus: map[int]int64{}, elapsed: time.Since(start)}
	for _, w := range ws {
		r.latencies = append(r.latencies, w.lat...)
		for k, v := range w.status {
			r.byStatus[k] += v
		}
	}
	r.n = int64(len(r.latencies))
	sort.Slice(r.latencies, func(i, j int) bool { return r.latencies[i] < r.latencies[j] })
	return r
}

func (r result) pct(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	return r.latencies[min(int(p*float64(len(r.latencies))), len(r.latencies)-1)]
}

func (r result) print(w io.Writer, conns int, dur time.Duration) {
	fmt.Fprintf(w, "requests %d in %v with %d connections: %.0f req/s; p50 %v p99 %v max %v\n",
		r.n, r.elapsed.Round(time.Millisecond), conns, float64(r.n)/r.elapsed.Seconds(),
		r.pct(0.50).Round(time.Microsecond), r.pct(0.99).Round(time.Microsecond), r.pct(1).Round(time.Microsecond))
	codes := make([]int, 0, len(r.byStatus))
	for c := range r.byStatus {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	for _, c := range codes {
		label := strconv.Itoa(c)
		if c == 0 {
			label = "failed"
		}
		fmt.Fprintf(w, "  %s: %d\n", label, r.byStatus[c])
	}
}
