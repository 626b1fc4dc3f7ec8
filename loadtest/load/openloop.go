package load

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Burst shapes one open-loop run: arrivals at a fixed rate whatever the
// answers, the opening seconds of a flash sale. Unlike Run, a slow answer
// does not hold the next request back, so a stalled service shows in the
// latencies instead of in a lower request rate (no coordinated omission).
type Burst struct {
	// URLs are POSTed to in turn (round-robin), as in Options.
	URLs []string
	// Rate is the number of arrivals per second, at most MaxBurstRate.
	Rate int
	// Duration is how long arrivals come, at most MaxBurstDuration; the
	// answers of the last ones are awaited.
	Duration time.Duration
	// UserPrefix starts every userId; a sequence number follows it.
	UserPrefix string
	// Timeout bounds one request; 10 s when zero.
	Timeout time.Duration
	// MaxOutstanding caps the requests in progress at once, so a service
	// that stops answering cannot exhaust the generator's memory or file
	// descriptors; an arrival past it is dropped (counted, not sent).
	// 50,000 when zero.
	MaxOutstanding int
}

// Bounds of a Burst: arrival i is due i/Rate seconds after the start, and
// both bounds together keep that arithmetic within an int64 of nanoseconds.
const (
	MaxBurstRate     = 1_000_000
	MaxBurstDuration = time.Hour
)

// BurstResult is what one open-loop run saw. Every latency runs from the
// arrival's intended send time, not from when the generator got to send
// it, so the generator's own lateness is charged too, never hidden.
type BurstResult struct {
	// Sent counts the requests sent; Dropped the arrivals not sent because
	// MaxOutstanding requests were in progress. Sent + Dropped is Rate ×
	// Duration, rounded up, unless ctx ended the run early.
	Sent, Dropped int64
	// OK counts 200 answers, SoldOut 409 answers with code sold_out.
	OK, SoldOut int64
	// Other counts every other answer by "status code", e.g. "503
	// unavailable"; "failed" is a transport error or a timeout.
	Other map[string]int64
	// MaxOutstanding is the most requests seen in progress at once.
	MaxOutstanding int64
	// MaxLag is the most a request was sent after its intended time: large
	// values mean the generator itself could not keep up.
	MaxLag time.Duration
	// Elapsed runs from the start to the last answer.
	Elapsed time.Duration
	// OKLatency holds the latencies of 200 answers, SoldOutLatency of
	// sold_out answers, AllLatency of every request sent, errors included.
	OKLatency, SoldOutLatency, AllLatency Latencies
}

// ServerErrors is the number of 5xx answers and transport failures.
func (r *BurstResult) ServerErrors() int64 {
	var n int64
	for k, v := range r.Other {
		if k == "failed" || statusOf(k)/100 == 5 {
			n += v
		}
	}
	return n
}

// Has5xx tells whether any answer was a 5xx.
func (r *BurstResult) Has5xx() bool {
	for k, v := range r.Other {
		if v > 0 && statusOf(k)/100 == 5 {
			return true
		}
	}
	return false
}

// ClientErrors is the number of 4xx answers other than sold_out.
func (r *BurstResult) ClientErrors() int64 {
	var n int64
	for k, v := range r.Other {
		if statusOf(k)/100 == 4 {
			n += v
		}
	}
	return n
}

// statusOf is the status of an Other key such as "503 unavailable"; 0 for
// "failed".
func statusOf(key string) int {
	s, _, _ := strings.Cut(key, " ")
	n, _ := strconv.Atoi(s)
	return n
}

// Latencies is a latency histogram in microseconds, 1 µs to 60 s with three
// significant digits; a longer latency is recorded as 60 s.
type Latencies struct {
	*hdrhistogram.Histogram
}

// NewLatencies returns an empty histogram.
func NewLatencies() Latencies {
	return Latencies{hdrhistogram.New(1, maxLatency.Microseconds(), 3)}
}

const maxLatency = time.Minute

// Record adds one latency.
func (l Latencies) Record(d time.Duration) {
	// In range after the clamp: RecordValue cannot fail.
	_ = l.RecordValue(min(max(d, time.Microsecond), maxLatency).Microseconds())
}

// At returns the latency below which the percentage p (0 to 100) of the
// recorded ones fall; 0 when none was recorded.
func (l Latencies) At(p float64) time.Duration {
	return time.Duration(l.ValueAtPercentile(p)) * time.Microsecond
}

// Summary is a histogram in a few numbers.
type Summary struct {
	Count                    int64
	P50, P90, P99, P999, Max time.Duration
}

// Summary returns the count, the 50th, 90th, 99th and 99.9th percentiles
// and the maximum.
func (l Latencies) Summary() Summary {
	return Summary{Count: l.TotalCount(), P50: l.At(50), P90: l.At(90), P99: l.At(99), P999: l.At(99.9),
		Max: time.Duration(l.Max()) * time.Microsecond}
}

// The keys of the two answers a join expects; any other answer is counted
// in Other under its own "status code" key.
const (
	okKey      = "200"
	soldOutKey = "409 sold_out"
)

// recorder gathers the answers of a burst from its request goroutines; one
// mutex is enough, held only to count and record.
type recorder struct {
	mu                  sync.Mutex
	ok, soldOut         int64
	other               map[string]int64
	okLat, soldLat, lat Latencies
}

func (rec *recorder) add(key string, d time.Duration) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.lat.Record(d)
	switch key {
	case okKey:
		rec.ok++
		rec.okLat.Record(d)
	case soldOutKey:
		rec.soldOut++
		rec.soldLat.Record(d)
	default:
		rec.other[key]++
	}
}

// RunBurst sends Rate × Duration arrivals, arrival i due at start + i/Rate,
// each its own request, however slowly the earlier ones are answered. When
// the generator falls behind it sends the late arrivals at once, and their
// latencies still run from when they were due. ctx ends the arrivals early;
// requests already sent are awaited. RunBurst returns an error only for bad
// options.
func RunBurst(ctx context.Context, o Burst) (*BurstResult, error) {
	if len(o.URLs) == 0 || slices.Contains(o.URLs, "") || o.Rate < 1 || o.Rate > MaxBurstRate ||
		o.Duration <= 0 || o.Duration > MaxBurstDuration || o.Timeout < 0 || o.MaxOutstanding < 0 {
		return nil, fmt.Errorf("load: a burst needs URLs, a rate in [1, %d]/s, a duration in (0, %v], and no negative timeout or cap",
			MaxBurstRate, MaxBurstDuration)
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxOutstanding == 0 {
		o.MaxOutstanding = 50_000
	}
	// No MaxConnsPerHost: the transport would queue requests behind it,
	// hidden from the schedule; MaxOutstanding bounds the connections.
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: o.Timeout}

	n := (int64(o.Duration)*int64(o.Rate) + int64(time.Second) - 1) / int64(time.Second)
	// The userIds are numbered in arrival order: first+i is arrival i.
	first := seq.Add(n) - n + 1
	rec := &recorder{other: map[string]int64{}, okLat: NewLatencies(), soldLat: NewLatencies(), lat: NewLatencies()}
	r := &BurstResult{}
	var outstanding, maxLag atomic.Int64
	var wg sync.WaitGroup
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	start := time.Now()
	for i := int64(0); i < n; i++ {
		due := start.Add(time.Duration(i * int64(time.Second) / int64(o.Rate)))
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			break
		}
		if outstanding.Load() >= int64(o.MaxOutstanding) {
			r.Dropped++
			continue
		}
		r.Sent++
		r.MaxOutstanding = max(r.MaxOutstanding, outstanding.Add(1))
		wg.Add(1)
		go func() {
			defer wg.Done()
			key, d := send(client, pick(o.URLs, i), o.UserPrefix, first+i, due, &maxLag)
			outstanding.Add(-1)
			rec.add(key, d)
		}()
	}
	wg.Wait()
	r.Elapsed = time.Since(start)
	r.OK, r.SoldOut, r.Other = rec.ok, rec.soldOut, rec.other
	r.MaxLag = time.Duration(maxLag.Load())
	r.OKLatency, r.SoldOutLatency, r.AllLatency = rec.okLat, rec.soldLat, rec.lat
	return r, nil
}

// send POSTs the join of user prefix+n, due at due, and returns how it was
// answered — okKey, soldOutKey or an Other key — and the latency from due;
// it raises maxLag to how late it was sent. Like Run's requests it is not
// bound to the run's ctx: a request sent is answered.
func send(client *http.Client, url, prefix string, n int64, due time.Time, maxLag *atomic.Int64) (string, time.Duration) {
	body := make([]byte, 0, 96)
	body = append(body, `{"userId":"`...)
	body = append(body, prefix...)
	body = strconv.AppendInt(body, n, 10)
	body = append(body, `"}`...)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	lag := int64(time.Since(due))
	for cur := maxLag.Load(); lag > cur; cur = maxLag.Load() {
		if maxLag.CompareAndSwap(cur, lag) {
			break
		}
	}
	res, err := client.Do(req)
	if err != nil {
		return "failed", time.Since(due)
	}
	b, err := io.ReadAll(res.Body)
	_ = res.Body.Close() // read to the end above
	d := time.Since(due)
	switch {
	case err != nil:
		return "failed", d
	case res.StatusCode == http.StatusOK:
		return okKey, d
	case IsSoldOut(res.StatusCode, b):
		return soldOutKey, d
	}
	return strconv.Itoa(res.StatusCode) + " " + errorCode(b), d
}
