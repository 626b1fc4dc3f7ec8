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
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"time"

	"seckill/loadtest/load"
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
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	r, err := load.Run(context.Background(), load.Options{URL: *url + target, Conns: *conns, Duration: *dur,
		UserPrefix: "load-" + hex.EncodeToString(b) + "-"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "joinload:", err)
		os.Exit(1)
	}
	printResult(os.Stdout, r, *conns)
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

func printResult(w io.Writer, r *load.Result, conns int) {
	fmt.Fprintf(w, "requests %d in %v with %d connections: %.0f req/s; p50 %v p99 %v max %v\n",
		r.Requests, r.Elapsed.Round(time.Millisecond), conns, r.PerSec(r.Requests),
		r.Percentile(0.50).Round(time.Microsecond), r.Percentile(0.99).Round(time.Microsecond),
		r.Percentile(1).Round(time.Microsecond))
	fmt.Fprintf(w, "  200: %d\n  409 sold_out: %d\n", r.OK, r.SoldOut)
	others := make([]string, 0, len(r.Other))
	for k := range r.Other {
		others = append(others, k)
	}
	sort.Strings(others)
	for _, k := range others {
		fmt.Fprintf(w, "  %s: %d\n", k, r.Other[k])
	}
}
