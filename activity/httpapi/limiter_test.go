package httpapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"seckill/internal/testenv"
)

func (l *limiter) keys() int {
	n := 0
	for i := range l.shards {
		l.shards[i].mu.Lock()
		n += len(l.shards[i].buckets)
		l.shards[i].mu.Unlock()
	}
	return n
}

// TestLimiterCap: however many keys clients make up, the limiter keeps at
// most its cap, and a key that is over its rate stays limited while the
// others come and go.
func TestLimiterCap(t *testing.T) {
	const maxKeys = 64 * 16
	l := newLimiter(Limit{Rate: 0.001, Burst: 2}, maxKeys)
	for i := range 100_000 {
		l.allow(fmt.Sprintf("made-up-%d", i))
	}
	if n := l.keys(); n > maxKeys {
		t.Fatalf("%d keys kept, cap %d", n, maxKeys)
	}
	first, second, third := l.allow("eager"), l.allow("eager"), l.allow("eager")
	if !first || !second || third {
		t.Fatal("a burst of 2 did not hold")
	}
}

// TestLimiterTinyRateLargeBurst: a refill time that does not fit in
// nanoseconds is capped (it would wrap negative and make every bucket look
// refilled), and the burst holds.
func TestLimiterTinyRateLargeBurst(t *testing.T) {
	l := newLimiter(Limit{Rate: 1e-4, Burst: 1_000_000}, 64*4)
	if l.refill <= 0 {
		t.Fatalf("refill %d", l.refill)
	}
	for range 1_000_000 {
		l.allow("drained")
	}
	l.allow("other")
	if l.allow("drained") {
		t.Fatal("a drained bucket was forgotten and started again with a full burst")
	}
}

// TestLimiterForgetsOnlyWhatRefilled: a full shard first forgets buckets
// that have refilled, which changes no answer.
func TestLimiterForgetsOnlyWhatRefilled(t *testing.T) {
	l := newLimiter(Limit{Rate: 1000, Burst: 1}, 64) // one key a shard
	l.allow("a")
	time.Sleep(5 * time.Millisecond) // "a" refilled
	for i := range 1000 {
		l.allow(fmt.Sprintf("k%d", i))
	}
	if n := l.keys(); n > 64 {
		t.Fatalf("%d keys kept, cap 64", n)
	}
}

// BenchmarkLimiterBytesPerKey measures the heap a limiter keeps per key:
//
//	go test -run '^$' -bench LimiterBytesPerKey ./activity/httpapi/
func BenchmarkLimiterBytesPerKey(b *testing.B) {
	const n = 1_000_000
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		l := newLimiter(Limit{Rate: 5, Burst: 10}, n)
		for i := range n {
			l.allow("42:user-" + fmt.Sprint(i))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(l.keys()), "bytes/key")
		runtime.KeepAlive(l)
	}
}

// TestPerUserLimitKeysOnlyRealActivities: joins on activities that do not
// exist keep no per-user keys; joins on a live one do.
func TestPerUserLimitKeysOnlyRealActivities(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	a := env.OpenActivity(t, 100, 100)
	s := New(env.Svc, Config{AdminToken: "x", PerUser: Limit{Rate: 1, Burst: 100}})
	join := func(id int64, user string) int {
		req := httptest.NewRequest(http.MethodPost, fmt.Sprintf("/api/v1/activities/%d/join", id),
			strings.NewReader(`{"userId":"`+user+`"}`))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		return w.Code
	}
	for i := range 500 {
		if code := join(int64(1_000_000+i), fmt.Sprintf("u%d", i)); code != http.StatusNotFound {
			t.Fatalf("join of a made-up activity: %d, want 404", code)
		}
	}
	if n := s.perUser.keys(); n != 0 {
		t.Fatalf("%d per-user keys for made-up activities, want none", n)
	}
	// Limited from the first join on, on a fresh server too.
	fresh := New(env.Svc, Config{AdminToken: "x", PerUser: Limit{Rate: 0.001, Burst: 2}})
	codes := map[int]int{}
	for range 5 {
		req := httptest.NewRequest(http.MethodPost, fmt.Sprintf("/api/v1/activities/%d/join", a.ID),
			strings.NewReader(`{"userId":"eager"}`))
		w := httptest.NewRecorder()
		fresh.ServeHTTP(w, req)
		codes[w.Code]++
	}
	if codes[http.StatusTooManyRequests] != 3 {
		t.Fatalf("answers %v on a fresh server, want 3 rate limited after a burst of 2", codes)
	}
	for i := range 5 {
		if code := join(a.ID, fmt.Sprintf("real%d", i)); code != http.StatusOK {
			t.Fatalf("join of the live activity: %d", code)
		}
	}
	if n := s.perUser.keys(); n != 5 {
		t.Fatalf("%d per-user keys for 5 users of the live activity, want 5", n)
	}
}
