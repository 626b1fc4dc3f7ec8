package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"hash/maphash"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
)

// requestIDKey is where the request ID is kept in the gin context.
const requestIDKey = "seckill.requestId"

// requestIDs makes request IDs: a random prefix per process and a counter,
// unique without a random read per request.
var requestIDs = func() (prefix string, n *atomic.Uint64) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b), new(atomic.Uint64)
}

var requestIDPrefix, requestIDSeq = requestIDs()

// requestID takes the caller's X-Request-ID when it is a sane one, or makes
// one, echoes it in the answer and keeps it for the logs.
func requestID(c *gin.Context) {
	id := ""
	if v := c.Request.Header[requestIDHeader]; len(v) > 0 {
		id = v[0]
	}
	if !saneID(id) {
		id = requestIDPrefix + strconv.FormatUint(requestIDSeq.Add(1)|1<<32, 16)[1:]
	}
	c.Writer.Header()[requestIDHeader] = []string{id}
	c.Set(requestIDKey, id)
	c.Next()
}

// requestIDHeader is X-Request-ID as net/http keeps it, so that reading
// and writing it need no canonical form made per request.
var requestIDHeader = http.CanonicalHeaderKey("X-Request-ID")

// requestIDOf returns the request ID of a request.
func requestIDOf(c *gin.Context) string { return c.GetString(requestIDKey) }

func saneID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// cors answers preflights and adds the CORS headers for the configured
// origins; with none configured it does nothing, and browsers on other
// origins are refused as usual.
func cors(origins []string) gin.HandlerFunc {
	allowed := map[string]bool{}
	for _, o := range origins {
		allowed[o] = true
	}
	return func(c *gin.Context) {
		origin := c.GetHeader("Origin")
		if origin == "" || !(allowed[origin] || allowed["*"]) {
			c.Next()
			return
		}
		h := c.Writer.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		if c.Request.Method == http.MethodOptions && c.GetHeader("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key, X-Request-ID")
			h.Set("Access-Control-Max-Age", "600")
			c.AbortWithStatus(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", "X-Request-ID")
		c.Next()
	}
}

// Limit is a token-bucket rate: Rate requests a second on average, bursts of
// up to Burst. A zero Rate turns the limit off.
type Limit struct {
	Rate  float64
	Burst int
}

// limiter keeps one token bucket per key (a client IP, an activity's
// user), in shards, in at most maxKeys buckets of 16 bytes keyed by a 64-bit
// hash of the key. A bucket that has refilled is the same as none and is
// forgotten when its shard is full; when every bucket of a full shard is
// still draining, one of them is dropped (its key starts again with a full
// burst), so the memory stays bounded whatever keys a client makes up.
type limiter struct {
	limit    Limit
	seed     maphash.Seed
	perShard int
	refill   int64     // nanoseconds an empty bucket takes to fill
	start    time.Time // the clock: monotonic time since start
	shards   [64]limiterShard
}

type limiterShard struct {
	mu      sync.Mutex
	buckets map[uint64]bucket
}

type bucket struct {
	tokens float64
	at     int64 // nanoseconds since the limiter's start, of the last request
}

// DefaultRateKeys is how many keys a limiter keeps at most.
const DefaultRateKeys = 1 << 20

func newLimiter(l Limit, maxKeys int) *limiter {
	if l.Rate <= 0 {
		return nil
	}
	if l.Burst < 1 {
		l.Burst = max(1, int(l.Rate))
	}
	if maxKeys <= 0 {
		maxKeys = DefaultRateKeys
	}
	// Capped: a tiny rate with a large burst would overflow.
	refill := min(float64(l.Burst)/l.Rate*float64(time.Second), float64(math.MaxInt64/2))
	lm := &limiter{limit: l, seed: maphash.MakeSeed(), perShard: max(1, maxKeys/64), refill: int64(refill),
		start: time.Now()}
	for i := range lm.shards {
		lm.shards[i].buckets = map[uint64]bucket{}
	}
	return lm
}

// allow reports whether key may make one more request now. A nil limiter
// allows everything.
// refund gives key's bucket back a token that allow took.
func (l *limiter) refund(key string) {
	if l == nil {
		return
	}
	h := maphash.String(l.seed, key)
	sh := &l.shards[h%uint64(len(l.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if b, ok := sh.buckets[h]; ok {
		b.tokens = min(float64(l.limit.Burst), b.tokens+1)
		sh.buckets[h] = b
	}
}

func (l *limiter) allow(key string) bool {

	if l == nil {
		return true
	}
	h := maphash.String(l.seed, key)
	sh := &l.shards[h%uint64(len(l.shards))]
	now := int64(time.Since(l.start)) // monotonic: a clock step changes nothing
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b, ok := sh.buckets[h]
	if !ok {
		if len(sh.buckets) >= l.perShard {
			sh.evict(now, l.refill, l.perShard)
		}
		b = bucket{tokens: float64(l.limit.Burst), at: now}
	}
	b.tokens = min(float64(l.limit.Burst), b.tokens+float64(now-b.at)/float64(time.Second)*l.limit.Rate)
	b.at = now
	allowed := b.tokens >= 1
	if allowed {
		b.tokens--
	}
	sh.buckets[h] = b
	return allowed
}

// forget drops key's bucket.
func (l *limiter) forget(key string) {
	if l == nil {
		return
	}
	h := maphash.String(l.seed, key)
	sh := &l.shards[h%uint64(len(l.shards))]
	sh.mu.Lock()
	delete(sh.buckets, h)
	sh.mu.Unlock()
}

// evict makes room in a full shard: the buckets that have refilled go, and
// if none has, one still draining does.
func (sh *limiterShard) evict(now, refill int64, limit int) {
	for k, b := range sh.buckets {
		if now-b.at >= refill {
			delete(sh.buckets, k)
		}
	}
	for k := range sh.buckets {
		if len(sh.buckets) < limit {
			return
		}
		delete(sh.buckets, k)
	}
}

// clientIP is the address of the peer; X-Forwarded-For is not trusted.
func clientIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i > 0 {
		host = host[:i]
	}
	return host
}
