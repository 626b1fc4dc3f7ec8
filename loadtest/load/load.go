// Package load is the closed-loop HTTP load generator of the comparison
// harness: N connections, each sending its next request as soon as the last
// one is answered, for a fixed duration. Every request carries a JSON body
// with a userId that is unique within the run, so a per-user limit never
// turns a join away, and with Options.Signer the HS256 JWT of that user.
package load

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Options shape one run.
type Options struct {
	// URLs are the endpoints POSTed to, one request after the other in
	// turn (round-robin): the same endpoint on each instance of a cluster,
	// or one URL.
	URLs []string
	// Conns is the number of connections, each one request at a time.
	Conns int
	// Duration bounds the run; requests in flight at the end are awaited.
	Duration time.Duration
	// UserPrefix starts every userId; a sequence number follows it.
	UserPrefix string
	// Timeout bounds one request; 10 s when zero.
	Timeout time.Duration
	// Signer, when set, gives every request the bearer JWT of its userId,
	// for a server in jwt mode.
	Signer *Signer
}

// Result is what one run saw.
type Result struct {
	Elapsed  time.Duration
	Requests int64
	// OK counts 200 answers, SoldOut 409 answers with code sold_out.
	OK, SoldOut int64
	// Other counts every other answer by "status code", e.g. "503
	// unavailable"; "failed" is a transport error.
	Other map[string]int64
	// LastOK is when, from the start, the last 200 answer arrived;
	// FirstSoldOut when the first sold_out answer arrived (zero: none).
	LastOK, FirstSoldOut time.Duration
	// Latencies of every request, sorted.
	Latencies []time.Duration
}

// Answers is the number of join answers: tokens and sold-out answers.
func (r *Result) Answers() int64 { return r.OK + r.SoldOut }

// PerSec returns n per second of the run.
func (r *Result) PerSec(n int64) float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(n) / r.Elapsed.Seconds()
}

// Percentile returns the latency below which the fraction p of requests
// finished (0 when nothing was sent).
func (r *Result) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	return r.Latencies[min(int(p*float64(len(r.Latencies))), len(r.Latencies)-1)]
}

// Mean returns the mean latency (0 when nothing was sent).
func (r *Result) Mean() time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	var sum time.Duration
	for _, l := range r.Latencies {
		sum += l
	}
	return sum / time.Duration(len(r.Latencies))
}

// Errors is the number of answers that were neither a token nor sold out.
func (r *Result) Errors() int64 {
	var n int64
	for _, v := range r.Other {
		n += v
	}
	return n
}

var seq atomic.Int64

// Run sends load until the duration is over or ctx is done. It returns an
// error only for bad options.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Conns < 1 || o.Duration <= 0 || len(o.URLs) == 0 || slices.Contains(o.URLs, "") {
		return nil, fmt.Errorf("load: need URLs, conns ≥ 1 and a duration > 0")
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConns:        o.Conns * len(o.URLs),
		MaxIdleConnsPerHost: o.Conns,
		MaxConnsPerHost:     o.Conns,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: o.Timeout}

	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	type worker struct {
		lat                  []time.Duration
		ok, soldOut          int64
		other                map[string]int64
		lastOK, firstSoldOut time.Duration
	}
	ws := make([]worker, o.Conns)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &ws[i]
			w.lat = make([]time.Duration, 0, 1<<13)
			w.other = map[string]int64{}
			body := make([]byte, 0, 96)
			var resp bytes.Buffer
			for ctx.Err() == nil {
				n := seq.Add(1)
				body = append(body[:0], `{"userId":"`...)
				body = append(body, o.UserPrefix...)
				body = strconv.AppendInt(body, n, 10)
				body = append(body, `"}`...)
				// The request is not bound to ctx: one sent before the
				// deadline is answered, so no join is cut off midway.
				req, _ := http.NewRequest(http.MethodPost, pick(o.URLs, n), bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				if o.Signer != nil {
					// Signed before the clock starts: the server's verify
					// is measured, not the generator's signing.
					tok, err := o.Signer.Sign(string(body[len(`{"userId":"`) : len(body)-2]))
					if err != nil {
						w.other["failed"]++
						continue
					}
					req.Header.Set("Authorization", "Bearer "+tok)
				}
				t0 := time.Now()
				res, err := client.Do(req)
				if err != nil {
					w.lat = append(w.lat, time.Since(t0))
					w.other["failed"]++
					if ctx.Err() == nil {
						// A refused connection would spin: slow down.
						time.Sleep(10 * time.Millisecond)
					}
					continue
				}
				resp.Reset()
				_, _ = resp.ReadFrom(res.Body)
				_ = res.Body.Close() // read to the end above
				now := time.Now()
				w.lat = append(w.lat, now.Sub(t0))
				switch {
				case res.StatusCode == http.StatusOK:
					w.ok++
					w.lastOK = now.Sub(start)
				case res.StatusCode == http.StatusConflict && bytes.Contains(resp.Bytes(), []byte(`"sold_out"`)):
					w.soldOut++
					if w.firstSoldOut == 0 {
						w.firstSoldOut = now.Sub(start)
					}
				default:
					w.other[strconv.Itoa(res.StatusCode)+" "+errorCode(resp.Bytes())]++
				}
			}
		}()
	}
	wg.Wait()
	r := &Result{Elapsed: time.Since(start), Other: map[string]int64{}}
	for _, w := range ws {
		r.Latencies = append(r.Latencies, w.lat...)
		r.OK += w.ok
		r.SoldOut += w.soldOut
		for k, v := range w.other {
			r.Other[k] += v
		}
		r.LastOK = max(r.LastOK, w.lastOK)
		if w.firstSoldOut > 0 && (r.FirstSoldOut == 0 || w.firstSoldOut < r.FirstSoldOut) {
			r.FirstSoldOut = w.firstSoldOut
		}
	}
	r.Requests = int64(len(r.Latencies))
	slices.Sort(r.Latencies)
	return r, nil
}

// pick is the URL of the request numbered n: the requests of a run are
// numbered one after the other, so each URL gets every len(urls)-th.
func pick(urls []string, n int64) string {
	return urls[int(uint64(n)%uint64(len(urls)))]
}

func errorCode(b []byte) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &e) != nil || e.Error.Code == "" {
		return "?"
	}
	return e.Error.Code
}

// Post sends one join and returns its status and body; the harness uses it
// to sell an activity out and to drain what a run left.
func Post(ctx context.Context, client *http.Client, url, userID string) (int, []byte, error) {
	body := `{"userId":"` + userID + `"}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewBufferString(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = res.Body.Close() }() // read to the end below
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// Sleep waits for d, or until ctx is done and then returns its error: the
// harness's pauses and the baselines' retry delays.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// IsShed tells whether an answer is the 503 of a join the service shed
// because too many were in progress (not one of a dependency down).
func IsShed(status int, body []byte) bool {
	return status == http.StatusServiceUnavailable && bytes.Contains(body, []byte(`"the service is busy`))
}

// IsSoldOut tells whether an answer is 409 sold_out.
func IsSoldOut(status int, body []byte) bool {
	return status == http.StatusConflict && bytes.Contains(body, []byte(`"sold_out"`))
}
