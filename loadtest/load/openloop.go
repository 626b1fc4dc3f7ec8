package load

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
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
//
// The requests are written and read by hand over keep-alive HTTP/1.1
// connections, a few microseconds of CPU each, so that the generator takes
// as little as it can of a machine it shares with the service.
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
	// Conns is the number of connections to each URL, each carrying one
	// request at a time, as a gateway's pool of connections to an instance
	// would: an arrival waits for a free one, timed from its due time, so
	// the wait shows in the latencies. 1,024 when zero.
	Conns int
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
	// OK counts 200 answers, SoldOut 409 answers with code sold_out, Shed
	// the 503 answers of joins shed because too many were in progress.
	OK, SoldOut, Shed int64
	// Other counts every other answer by "status code", e.g. "503
	// unavailable"; "failed" is a transport error or a timeout.
	Other map[string]int64
	// MaxOutstanding is the most requests seen in progress at once.
	MaxOutstanding int64
	// MaxLag is the most an arrival was handed to the connections after its
	// due time: large values mean the generator itself could not keep up
	// (a wait for a free connection is not counted here, but in the
	// latencies).
	MaxLag time.Duration
	// Elapsed runs from the start to the last answer.
	Elapsed time.Duration
	// OKLatency holds the latencies of 200 answers, SoldOutLatency of
	// sold_out answers, ShedLatency of shed joins, AllLatency of every
	// request sent, errors included.
	OKLatency, SoldOutLatency, ShedLatency, AllLatency Latencies
}

// ServerErrors is the number of 5xx answers and transport failures, shed
// joins apart.
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

// The keys of the answers a join expects; any other answer is counted in
// Other under its own "status code" key.
const (
	okKey      = "200"
	soldOutKey = "409 sold_out"
	shedKey    = "503 shed"
)

// recorder gathers the answers of a burst from its request goroutines; one
// mutex is enough, held only to count and record.
type recorder struct {
	mu                           sync.Mutex
	ok, soldOut, shed            int64
	other                        map[string]int64
	okLat, soldLat, shedLat, lat Latencies
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
	case shedKey:
		rec.shed++
		rec.shedLat.Record(d)
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
		o.Duration <= 0 || o.Duration > MaxBurstDuration || o.Timeout < 0 || o.MaxOutstanding < 0 || o.Conns < 0 {
		return nil, fmt.Errorf("load: a burst needs URLs, a rate in [1, %d]/s, a duration in (0, %v], and no negative timeout, cap or connections",
			MaxBurstRate, MaxBurstDuration)
	}
	targets := make([]target, len(o.URLs))
	for i, u := range o.URLs {
		t, err := parseTarget(u)
		if err != nil {
			return nil, err
		}
		targets[i] = t
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxOutstanding == 0 {
		o.MaxOutstanding = 50_000
	}
	if o.Conns == 0 {
		o.Conns = 1024
	}

	n := (int64(o.Duration)*int64(o.Rate) + int64(time.Second) - 1) / int64(time.Second)
	// The userIds are numbered in arrival order: first+i is arrival i.
	first := seq.Add(n) - n + 1
	rec := &recorder{other: map[string]int64{}, okLat: NewLatencies(), soldLat: NewLatencies(), shedLat: NewLatencies(), lat: NewLatencies()}
	r := &BurstResult{}
	var outstanding atomic.Int64
	var wg sync.WaitGroup
	// One queue a URL, deep enough for every arrival in progress: the
	// dispatcher never blocks on it.
	queues := make([]chan arrival, len(targets))
	for i, t := range targets {
		queues[i] = make(chan arrival, o.MaxOutstanding)
		for range o.Conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := &burstConn{target: t, timeout: o.Timeout, prefix: o.UserPrefix}
				defer c.close()
				for a := range queues[i] {
					key := c.join(first + a.i)
					d := time.Since(a.due)
					outstanding.Add(-1)
					rec.add(key, d)
				}
			}()
		}
	}
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
		r.MaxLag = max(r.MaxLag, time.Since(due))
		queues[int(uint64(i)%uint64(len(queues)))] <- arrival{i: i, due: due}
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	r.Elapsed = time.Since(start)
	r.OK, r.SoldOut, r.Shed, r.Other = rec.ok, rec.soldOut, rec.shed, rec.other
	r.OKLatency, r.SoldOutLatency, r.ShedLatency, r.AllLatency = rec.okLat, rec.soldLat, rec.shedLat, rec.lat
	return r, nil
}

// arrival is arrival i of a burst, due at due.
type arrival struct {
	i   int64
	due time.Time
}

// target is where a URL's requests go: the address to dial, the Host
// header, and the path with its query.
type target struct {
	addr, host, path string
}

func parseTarget(raw string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return target{}, fmt.Errorf("load: %q: a burst needs http:// URLs", raw)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return target{addr: addr, host: u.Host, path: u.RequestURI()}, nil
}

// burstConn is one keep-alive connection of a burst, dialled on first use
// and again after a failure.
type burstConn struct {
	target
	timeout time.Duration
	prefix  string
	conn    net.Conn
	br      *bufio.Reader
	req     []byte
}

// join POSTs the join of user prefix+n and returns how it was answered:
// okKey, soldOutKey, shedKey or an Other key ("failed" for a transport
// error or a timeout, after which the connection is dialled anew).
func (c *burstConn) join(n int64) string {
	status, body, err := c.post(n)
	if err != nil {
		c.close()
		return "failed"
	}
	switch {
	case status == http.StatusOK:
		return okKey
	case IsSoldOut(status, body):
		return soldOutKey
	case IsShed(status, body):
		return shedKey
	}
	return strconv.Itoa(status) + " " + errorCode(body)
}

func (c *burstConn) post(n int64) (int, []byte, error) {
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.addr, 2*time.Second)
		if err != nil {
			return 0, nil, err
		}
		c.conn, c.br = conn, bufio.NewReaderSize(conn, 4096)
	}
	body := strconv.AppendInt(append([]byte(`{"userId":"`), c.prefix...), n, 10)
	body = append(body, `"}`...)
	c.req = append(c.req[:0], "POST "...)
	c.req = append(c.req, c.path...)
	c.req = append(c.req, " HTTP/1.1\r\nHost: "...)
	c.req = append(c.req, c.host...)
	c.req = append(c.req, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	c.req = strconv.AppendInt(c.req, int64(len(body)), 10)
	c.req = append(c.req, "\r\n\r\n"...)
	c.req = append(c.req, body...)
	if err := c.conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, nil, err
	}
	if _, err := c.conn.Write(c.req); err != nil {
		return 0, nil, err
	}
	res, err := http.ReadResponse(c.br, nil)
	// An informational answer (100 Continue, 103 Early Hints) comes before
	// the answer itself.
	for err == nil && res.StatusCode >= 100 && res.StatusCode < 200 && res.StatusCode != http.StatusSwitchingProtocols {
		res, err = http.ReadResponse(c.br, nil)
	}
	if err != nil {
		return 0, nil, err
	}
	b, err := io.ReadAll(res.Body)
	_ = res.Body.Close() // read to the end above
	if err != nil {
		return 0, nil, err
	}
	if res.Close {
		c.close()
	}
	return res.StatusCode, b, nil
}

func (c *burstConn) close() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn = nil
	}
}
