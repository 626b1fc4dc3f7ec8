package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"seckill/activity"
	"seckill/activity/httpapi"
)

var garbageSeed = flag.Uint64("garbage.seed", 20261111, "seed of TestGarbageTraffic's requests")

const (
	garbageRequests = 10_000
	garbageWorkers  = 32
	maxBody         = 8 << 10 // httpapi.MaxBodyBytes
)

// garbageRequest is one hostile request. Without raw it goes through an
// http.Client, on kept-alive connections; with raw, the bytes go as they are
// over a connection of their own.
type garbageRequest struct {
	kind   string
	method string
	path   string // escaped, with the query
	host   string // when set, the Host header
	header [][2]string
	body   []byte
	// chunked hides the body's length so that it goes chunked.
	chunked bool
	// admin marks a request to an admin endpoint, authorized marks one that
	// carries the right token: an admin request without it is never 2xx.
	admin, authorized bool

	raw []byte
	// responses is how many answers raw may get; halfClose ends raw with a
	// FIN, for requests that promise more body than they send.
	responses int
	halfClose bool
	// protocolStatus is the 5xx net/http itself answers to raw, as HTTP
	// wants: 505 to a version other than 1.x, 501 to a transfer coding it
	// does not implement. The API never sees such a request.
	protocolStatus int
}

// garbageGen makes hostile requests for one App and its activities.
type garbageGen struct {
	r                     *rand.Rand
	open, draft, closed   int64
	adminToken            string
	forger                *activity.Signer
	knownIDs, hostileIDs  []string
	hostileStrings        []string
	hostileHeaderNames    []string
	adminPaths, allRoutes []string
}

func newGarbageGen(seed uint64, open, draft, closed int64, adminToken string) *garbageGen {
	r := rand.New(rand.NewPCG(seed, seed^0x5eccc111))
	secret := make([]byte, 32)
	for i := range secret {
		secret[i] = byte(r.Uint32())
	}
	forger, _ := activity.NewSigner(secret)
	g := &garbageGen{r: r, open: open, draft: draft, closed: closed, adminToken: adminToken, forger: forger}
	g.knownIDs = []string{itoa(open), itoa(draft), itoa(closed)}
	g.hostileIDs = []string{
		"", "0", "-1", "-0", "+1", "00" + itoa(open), itoa(open) + ".0", "1e3", "0x1", " 1", "1 ", "abc",
		"9223372036854775807", "9223372036854775808", "99999999999999999999999999", "-9223372036854775808",
		"987654321", "1 OR 1=1", "1' OR '1'='1", "1;DROP TABLE activities", "1--", "1/**/OR/**/1=1",
		"..", ".", "%2e%2e", "..%2f..%2f", "%00", "%ff%fe", "%c0%ae%c0%ae", "${jndi:ldap://x/a}", "{{7*7}}",
		"%n%s%x", "\u0661", "\uff11", "1\u200b", "null", "undefined", "NaN", "[]", "{}",
		strings.Repeat("9", 1000), strings.Repeat("1", 10000),
	}
	g.hostileStrings = []string{
		"' OR '1'='1", "\"; DROP TABLE participations; --", "1; SHUTDOWN", "admin'--", "<script>alert(1)</script>",
		"../../../../etc/passwd", "..\\..\\windows\\win.ini", "%00", "\x00", "\xff\xfe\xfd", "\xc0\xaf", "\xed\xa0\x80",
		"\U0001F4A9", "\u202e\u0644", "e\u0301", "${jndi:ldap://x/a}", "{{.}}", "%s%s%s%n", "\\u0000", "seckill:{1}:used",
		"*", "?", "#", "&", "=", " ", "\t", "\r\n", "null", "true", "-1", "1e309", "0x7fffffff",
	}
	g.hostileHeaderNames = []string{
		"Content-Type", "Content-Encoding", "Idempotency-Key", "Authorization", "X-Forwarded-For", "X-Real-IP",
		"Accept", "Accept-Encoding", "Cookie", "Origin", "Referer", "User-Agent", "X-Request-ID", "Range",
		"If-None-Match", "Expect", "Upgrade", "Forwarded", "X-HTTP-Method-Override", "X-Original-URL",
	}
	g.adminPaths = []string{"/api/v1/admin/activities"}
	for _, id := range append(slices.Clone(g.knownIDs), "0", "abc", "987654321") {
		g.adminPaths = append(g.adminPaths, "/api/v1/admin/activities/"+id)
		for _, a := range []string{"approve", "refuse", "open", "close"} {
			g.adminPaths = append(g.adminPaths, "/api/v1/admin/activities/"+id+"/"+a)
		}
	}
	g.allRoutes = append([]string{"/healthz", "/readyz", "/metrics", "/api/v1/tokens/x",
		"/api/v1/activities/" + itoa(open), "/api/v1/activities/" + itoa(open) + "/join"}, g.adminPaths...)
	return g
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func (g *garbageGen) pick(list []string) string { return pickOf(g, list) }

func pickOf[T any](g *garbageGen, list []T) T { return list[g.r.IntN(len(list))] }

func (g *garbageGen) chance(p float64) bool { return g.r.Float64() < p }

func (g *garbageGen) bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.Uint32())
	}
	return b
}

// text returns n characters drawn from hostile ranges: ASCII, controls,
// multi-byte runes, invalid UTF-8.
func (g *garbageGen) text(n int) string {
	var sb strings.Builder
	for sb.Len() < n {
		switch g.r.IntN(6) {
		case 0, 1:
			sb.WriteByte(byte(' ' + g.r.IntN(95)))
		case 2:
			sb.WriteByte(byte(g.r.IntN(32)))
		case 3:
			sb.WriteRune(rune(0x80 + g.r.IntN(0x2000)))
		case 4:
			sb.WriteByte(byte(0x80 + g.r.IntN(0x80)))
		default:
			sb.WriteString(g.pick(g.hostileStrings))
		}
	}
	return sb.String()
}

// headerValue returns a value net/http sends: no control characters but tab.
func (g *garbageGen) headerValue(n int) string {
	var sb strings.Builder
	for sb.Len() < n {
		switch g.r.IntN(4) {
		case 0:
			sb.WriteByte(byte(0x80 + g.r.IntN(0x80))) // obs-text, often invalid UTF-8
		case 1:
			sb.WriteString(strings.Map(func(r rune) rune {
				if r < ' ' && r != '\t' || r == 0x7f {
					return -1
				}
				return r
			}, g.pick(g.hostileStrings)))
		default:
			sb.WriteByte(byte(' ' + g.r.IntN(95)))
		}
	}
	return sb.String()
}

// jsonValue returns a random JSON value of at most depth levels, with the
// API's member names among random ones.
func (g *garbageGen) jsonValue(depth int) string {
	k := g.r.IntN(10)
	if depth <= 0 {
		k = g.r.IntN(6)
	}
	switch k {
	case 0:
		return g.pick([]string{"null", "true", "false"})
	case 1:
		return g.pick([]string{"0", "-0", "1", "-1", "1.5", "1e3", "1E-7", "9223372036854775807", "9223372036854775808",
			"-9223372036854775809", "1e309", "10000000", "10000001", "0.0000000001", strings.Repeat("9", 400)})
	case 2, 3:
		s, _ := json.Marshal(g.text(g.r.IntN(40)))
		return string(s)
	case 4:
		return `"` + g.pick([]string{`\u0000`, `\ud800`, `\udfff\ud800`, `\"`, `\\`, `\/`, `\b\f\n\r\t`, `\u00e9`, `\uFFFF`}) + `"`
	case 5:
		return `"` + g.pick([]string{"2026-11-11T00:00:00Z", "2026-11-11T00:00:00.123456789+08:00", "0000-01-01T00:00:00Z",
			"9999-12-31T23:59:59Z", "10000-01-01T00:00:00Z", "2026-02-30T00:00:00Z", "yesterday", ""}) + `"`
	case 6, 7:
		var sb strings.Builder
		sb.WriteByte('{')
		for i, n := 0, g.r.IntN(6); i < n; i++ {
			if i > 0 {
				sb.WriteByte(',')
			}
			name := g.pick([]string{"userId", "USERID", "userid", "name", "description", "stock", "perUserLimit",
				"beginAt", "endAt", "state", "id", "__proto__", "constructor", "", "a"})
			if g.chance(0.2) {
				name = g.text(g.r.IntN(10))
			}
			n, _ := json.Marshal(name)
			sb.Write(n)
			sb.WriteByte(':')
			sb.WriteString(g.jsonValue(depth - 1))
		}
		sb.WriteByte('}')
		return sb.String()
	default:
		var sb strings.Builder
		sb.WriteByte('[')
		for i, n := 0, g.r.IntN(5); i < n; i++ {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(g.jsonValue(depth - 1))
		}
		sb.WriteByte(']')
		return sb.String()
	}
}

// body returns a hostile body: random bytes, broken or random JSON, JSON
// bombs under the 8 KiB limit, or bodies over it.
func (g *garbageGen) body() []byte {
	switch g.r.IntN(14) {
	case 0:
		return nil
	case 1:
		return g.bytes(g.r.IntN(600))
	case 2:
		return []byte(g.text(g.r.IntN(300)))
	case 3, 4, 5:
		return []byte(g.jsonValue(4))
	case 6: // a valid-looking body, then broken
		b := []byte(g.pick([]string{`{"userId":"u-1"}`, `{"name":"x","stock":5,"beginAt":"2030-01-01T00:00:00Z","endAt":"2030-01-02T00:00:00Z"}`}))
		for range 1 + g.r.IntN(3) {
			i := g.r.IntN(len(b))
			switch g.r.IntN(3) {
			case 0:
				b = slices.Delete(b, i, i+1)
			case 1:
				b = slices.Insert(b, i, byte(g.r.Uint32()))
			default:
				b[i] = byte(g.r.Uint32())
			}
		}
		return b
	case 7: // deep nesting
		n := 1000 + g.r.IntN(3000)
		open, close := g.pick([]string{"[", `{"a":`, `{"userId":`}), "]"
		if open != "[" {
			close = "}"
		}
		if len(open)*n > maxBody-n {
			n = (maxBody - 20) / (len(open) + 1)
		}
		return []byte(strings.Repeat(open, n) + "1" + strings.Repeat(close, n))
	case 8: // wide
		var sb strings.Builder
		sb.WriteByte('{')
		for i := 0; sb.Len() < maxBody-40; i++ {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `"k%d":%d`, i, i)
		}
		sb.WriteByte('}')
		return []byte(sb.String())
	case 9: // long strings and numbers
		return []byte(g.pick([]string{
			`{"userId":"` + strings.Repeat(`\u0000`, 1300) + `"}`,
			`{"userId":"` + strings.Repeat(`\ud83d\ude00`, 600) + `"}`,
			`{"stock":` + strings.Repeat("9", 8000) + `}`,
			`{"stock":1e` + strings.Repeat("9", 8000) + `}`,
			`{"name":"` + strings.Repeat("\U0001F4A9", 2000) + `"}`,
			`[` + strings.Repeat(`"",`, 2700) + `""]`,
		}))
	case 10: // just over the limit, or far over
		n := maxBody + 1 + g.r.IntN(pickOf(g, []int{16, 1 << 10, 200 << 10}))
		return append([]byte(`{"userId":"`), bytes.Repeat([]byte{'u'}, n)...)
	case 11:
		return []byte(g.pick([]string{"", " ", "\n", "null", "\xef\xbb\xbf{}", "{}", "[]", `""`, "0", "{", "}", "\x00"}))
	case 12:
		return []byte(`{"userId":"u-1"}` + strings.Repeat(" ", maxBody))
	default:
		return []byte(`{"userId":` + g.jsonValue(2) + `}`)
	}
}

// acceptedJoin reports whether the server could take body as a join: read
// as leniently as encoding/json reads it. Such bodies go to activities
// where a join takes nothing.
func acceptedJoin(body []byte) bool {
	if len(body) > maxBody {
		return false
	}
	var req struct {
		UserID *string `json:"userId"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if dec.Decode(&req) != nil {
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		return false
	}
	return req.UserID != nil && activity.ValidUserID(*req.UserID)
}

// headers returns a few random headers.
func (g *garbageGen) headers() [][2]string {
	var h [][2]string
	for range g.r.IntN(4) {
		name := g.pick(g.hostileHeaderNames)
		if g.chance(0.2) {
			name = "X-" + strings.Map(func(r rune) rune {
				if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
					return r
				}
				return '-'
			}, g.text(1+g.r.IntN(20)))
		}
		h = append(h, [2]string{name, g.headerValue(g.r.IntN(200))})
	}
	if g.chance(0.1) {
		h = append(h, [2]string{"Idempotency-Key", g.pick([]string{"k-1", "", strings.Repeat("k", 129), "k:1", "ключ", strings.Repeat("k", 4000)})})
	}
	if g.chance(0.05) { // just under the 16 KiB of MaxHeaderBytes
		h = append(h, [2]string{"X-Big", strings.Repeat("b", 12<<10)})
	}
	if g.chance(0.03) { // over it: 431
		h = append(h, [2]string{"X-Huge", strings.Repeat("h", 20<<10)})
	}
	if g.chance(0.02) {
		for i := range 300 {
			h = append(h, [2]string{fmt.Sprintf("X-Many-%d", i), strings.Repeat("m", 60)})
		}
	}
	return h
}

// wrongAuth returns an Authorization value that is not the admin token,
// or "" for none.
func (g *garbageGen) wrongAuth() string {
	return g.pick([]string{"", "Bearer", "Bearer ", "Bearer wrong", "Basic " + g.adminToken, g.adminToken,
		"Bearer " + g.adminToken + "x", "Bearer " + g.adminToken[:len(g.adminToken)-1], "Bearer " + strings.ToUpper(g.adminToken),
		"Bearer  " + g.adminToken + " extra", "Bearer " + strings.Repeat("A", 8000), "Bearer ' OR '1'='1", "Bearer \xff\xfe",
		"Digest " + g.adminToken, "bearer" + g.adminToken})
}

func (g *garbageGen) escapedID() string {
	id := g.pick(g.hostileIDs)
	if g.chance(0.3) {
		id = g.text(1 + g.r.IntN(30))
	}
	if strings.Contains(id, "%") && g.chance(0.5) {
		return id // sent as it is: already escaped, or a broken escape
	}
	return url.PathEscape(id)
}

// next returns the next request of the mix.
func (g *garbageGen) next() garbageRequest {
	var req garbageRequest
	switch n := g.r.IntN(100); {
	case n < 28:
		req = g.join()
	case n < 40:
		req = g.tokenLookup()
	case n < 47:
		req = g.public()
	case n < 68:
		req = g.adminRequest()
	case n < 76:
		req = g.unknownRoute()
	case n < 84:
		req = g.wrongMethod()
	default:
		return g.rawRequest()
	}
	if g.chance(0.03) {
		req.host = g.pick([]string{"evil.example", "localhost:1", "127.0.0.1:6379", "[::1]:80", "xn--nxasmq6b", strings.Repeat("h", 300)})
	}
	if !requestTarget(req.path) {
		// A broken escape, a space, a raw byte: an http.Client refuses it
		// or sends a broken request line, so it goes raw.
		req.raw, req.responses = req.rawBytes(), 1
	}
	return req
}

// requestTarget reports whether path is a well-formed origin-form request
// target: RFC 3986 characters and complete percent escapes.
func requestTarget(path string) bool {
	if _, err := url.ParseRequestURI(path); err != nil {
		return false
	}
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("-._~!$&'()*+,;=:@/?", c) >= 0:
		case c == '%' && i+2 < len(path) && isHex(path[i+1]) && isHex(path[i+2]):
		default:
			return false
		}
	}
	return true
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// rawBytes returns the request as it goes on the wire.
func (g *garbageRequest) rawBytes() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: x\r\n", g.method, g.path)
	for _, h := range g.header {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(g.body))
	b.Write(g.body)
	return b.Bytes()
}

// serverID returns the activity an escaped path id names for the server, or
// 0 for none.
func serverID(escaped string) int64 {
	s, err := url.PathUnescape(escaped)
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func (g *garbageGen) join() garbageRequest {
	req := garbageRequest{kind: "join", method: "POST", header: g.headers(), body: g.body(), chunked: g.chance(0.1)}
	var id string
	switch g.r.IntN(3) {
	case 0:
		id = g.pick(g.knownIDs)
	case 1:
		id = g.escapedID()
	default:
		id = itoa(g.open)
	}
	// A body the server could take goes where a join takes nothing.
	if serverID(id) == g.open && acceptedJoin(req.body) {
		id = g.pick([]string{itoa(g.draft), itoa(g.closed), "987654321"})
	}
	req.path = "/api/v1/activities/" + id + "/join"
	if g.chance(0.05) {
		req.path += g.pick([]string{"/", "?userId=u-1", "?" + url.QueryEscape(g.text(50)), "#frag", ";jsessionid=1"})
	}
	return req
}

func (g *garbageGen) tokenLookup() garbageRequest {
	var tok string
	switch g.r.IntN(8) {
	case 0: // forged: the right shape, signed with another secret
		var nonce [12]byte
		copy(nonce[:], g.bytes(12))
		tok = g.forger.Sign(g.open, int64(g.r.IntN(100)+1), nonce)
	case 1: // forged, then one character changed
		var nonce [12]byte
		tok = g.forger.Sign(g.open, 1, nonce)
		b := []byte(tok)
		b[g.r.IntN(len(b))] = "ABCxyz019-_"[g.r.IntN(11)]
		tok = string(b)
	case 2: // the right length, random base64
		tok = base64.RawURLEncoding.EncodeToString(g.bytes(40))
	case 3: // the right length, padded or standard alphabet
		tok = base64.StdEncoding.EncodeToString(g.bytes(40))
	case 4:
		tok = strings.Repeat("A", pickOf(g, []int{activity.TokenLen - 1, activity.TokenLen + 1, 5000, 15 << 10, 20 << 10}))
	case 5:
		tok = g.text(g.r.IntN(80))
	case 6:
		tok = g.pick(g.hostileStrings)
	default:
		tok = base64.RawURLEncoding.EncodeToString(g.bytes(g.r.IntN(100)))
	}
	return garbageRequest{kind: "token", method: "GET", path: "/api/v1/tokens/" + url.PathEscape(tok), header: g.headers()}
}

func (g *garbageGen) public() garbageRequest {
	id := g.escapedID()
	if g.chance(0.3) {
		id = g.pick(g.knownIDs)
	}
	return garbageRequest{kind: "public", method: "GET", path: "/api/v1/activities/" + id, header: g.headers()}
}

// adminRequest returns a request to an admin endpoint. With the right token
// it is one that changes nothing: a create or edit whose body is broken, an
// action the state machine refuses, or a read.
func (g *garbageGen) adminRequest() garbageRequest {
	req := garbageRequest{kind: "admin", admin: true, header: g.headers()}
	// Take out any Authorization header the random ones brought.
	req.header = slices.DeleteFunc(req.header, func(h [2]string) bool { return strings.EqualFold(h[0], "Authorization") })
	if !g.chance(0.5) {
		req.kind = "admin-unauthorized"
		req.method = g.pick([]string{"GET", "POST", "PATCH", "PUT", "DELETE"})
		req.path = g.pick(g.adminPaths)
		if g.chance(0.3) {
			req.path = "/api/v1/admin/activities/" + g.escapedID() + g.pick([]string{"", "/approve", "/open", "/close"})
		}
		req.body = g.body()
		if g.chance(0.2) { // a valid create: still 401
			req.body = []byte(`{"name":"intruder","stock":5,"beginAt":"2030-01-01T00:00:00Z","endAt":"2030-01-02T00:00:00Z"}`)
		}
		if a := g.wrongAuth(); a != "" {
			req.header = append(req.header, [2]string{"Authorization", a})
		}
		return req
	}
	req.authorized = true
	req.header = append(req.header, [2]string{"Authorization", "Bearer " + g.adminToken})
	switch g.r.IntN(5) {
	case 0:
		req.method, req.path = "POST", "/api/v1/admin/activities"
		req.body = g.brokenAdminBody()
	case 1:
		req.method, req.path = "PATCH", "/api/v1/admin/activities/"+g.pick([]string{itoa(g.draft), g.escapedID()})
		req.body = g.brokenAdminBody()
	case 2: // any edit of a non-draft is refused
		req.method, req.path = "PATCH", "/api/v1/admin/activities/"+g.pick([]string{itoa(g.open), itoa(g.closed)})
		req.body = g.body()
	case 3: // actions the state machine refuses, or on no activity
		action := g.pick([]string{"approve", "refuse", "open", "close"})
		id := g.pick([]string{itoa(g.open), itoa(g.closed), g.escapedID()})
		if n := serverID(id); n == g.draft || n == g.open && action == "close" {
			id = itoa(g.closed)
		}
		req.method, req.path, req.body = "POST", "/api/v1/admin/activities/"+id+"/"+action, g.body()
	default:
		req.method = "GET"
		req.path = g.pick([]string{"/api/v1/admin/activities", "/api/v1/admin/activities/" + g.pick(g.knownIDs),
			"/api/v1/admin/activities/" + g.escapedID()})
		if g.chance(0.6) {
			q := url.Values{}
			for range 1 + g.r.IntN(3) {
				q.Add(g.pick([]string{"state", "limit", "offset", "state", "x"}), g.pick(append(slices.Clone(g.hostileIDs),
					"draft", "open", "OPEN", "closed ", "101", "1000001", "2147483648")))
			}
			req.path += "?" + q.Encode()
		}
	}
	return req
}

// brokenAdminBody returns a create or edit body the server refuses: random
// garbage, or a valid body spoilt by a member no field name folds to.
func (g *garbageGen) brokenAdminBody() []byte {
	if g.chance(0.5) {
		b := g.body()
		var probe map[string]json.RawMessage
		if json.Unmarshal(b, &probe) != nil || len(b) > maxBody {
			return b // not an object, or too large
		}
	}
	valid := `"name":` + g.jsonValue(0) + `,"stock":5,"beginAt":"2030-01-01T00:00:00Z","endAt":"2030-01-02T00:00:00Z"`
	return []byte(`{` + valid + `,"zz` + strconv.Itoa(g.r.IntN(1000)) + `":` + g.jsonValue(2) + `}`)
}

func (g *garbageGen) unknownRoute() garbageRequest {
	var path string
	switch g.r.IntN(6) {
	case 0:
		path = "/" + url.PathEscape(g.text(1+g.r.IntN(60)))
	case 1:
		path = g.pick([]string{"/../../../../etc/passwd", "/api/v1/../../etc/passwd", "/api/v1/%2e%2e/%2e%2e/etc/passwd",
			"/api/v1/activities/..%2f..%2fadmin", "/%2e%2e%5c%2e%2e%5cwindows", "/api/v1/admin/../admin/activities",
			"//api/v1/admin/activities", "/api/v1/admin/activities/", "/healthz/", "/api/v2/activities/1/join",
			"/API/V1/ACTIVITIES", "/api/v1/activities/1/join/extra", "/.env", "/.git/config", "/debug/pprof/",
			"/server-status", "/wp-admin/", "/api/v1/tokens", "/api/v1/tokens/", "/api/v1/admin", "/favicon.ico",
			"/api/v1/activities/1/../../admin/activities", "/%00", "/%ff", "/;", "/?", "/api/v1/activities/1%00/join"})
	case 2:
		path = "/api/v1/" + strings.Repeat("a/", 2000)
	case 3:
		path = "/" + strings.Repeat("x", pickOf(g, []int{1000, 10 << 10, 20 << 10}))
	case 4:
		path = "/api/v1/activities/" + g.escapedID() + "/" + url.PathEscape(g.text(1+g.r.IntN(10)))
		if strings.HasSuffix(path, "/join") || strings.HasSuffix(path, "/close") {
			path += "x"
		}
	default:
		path = "/healthz?" + url.QueryEscape(g.text(g.r.IntN(200)))
	}
	return garbageRequest{kind: "unknown-route", method: g.pick([]string{"GET", "POST", "PUT"}), path: path,
		header: g.headers(), body: g.body()}
}

func (g *garbageGen) wrongMethod() garbageRequest {
	method := g.pick([]string{"PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "HEAD", "POST", "GET", "PROPFIND", "FOO", "get", "X-" + strconv.Itoa(g.r.IntN(100))})
	path := g.pick(g.allRoutes)
	req := garbageRequest{kind: "wrong-method", method: method, path: path, header: g.headers(), body: g.body()}
	if strings.HasPrefix(path, "/api/v1/admin/") {
		req.admin = true
	}
	// A POST to a join or to an admin action is the right method: make it
	// one that takes nothing.
	if method == "POST" && strings.HasSuffix(path, "/join") && acceptedJoin(req.body) {
		req.body = []byte(`{"userId":`)
	}
	if method == "POST" || method == "PATCH" || method == "GET" {
		req.header = slices.DeleteFunc(req.header, func(h [2]string) bool { return strings.EqualFold(h[0], "Authorization") })
	}
	if method == "HEAD" {
		req.body = nil
	}
	return req
}

// rawRequest returns bytes that are malformed at the HTTP level, or well
// formed in ways an http.Client does not send.
func (g *garbageGen) rawRequest() garbageRequest {
	draftJoin := "/api/v1/activities/" + itoa(g.draft) + "/join"
	openJoin := "/api/v1/activities/" + itoa(g.open) + "/join"
	broken := `{"userId":`
	req := garbageRequest{kind: "raw", responses: 1}
	switch g.r.IntN(24) {
	case 0:
		req.raw = g.bytes(1 + g.r.IntN(2000))
	case 1:
		req.raw = []byte(g.text(1+g.r.IntN(500)) + "\r\n\r\n")
	case 2:
		req.raw = []byte(g.pick([]string{"GET\r\n\r\n", "GET /healthz\r\n\r\n", "GET /healthz HTTP/1.1 extra\r\nHost: x\r\n\r\n",
			" GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "GET  /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "\r\n\r\n",
			"GET /healthz HTTP/1.1\r\n\r\n", "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
			"GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n", "GET /healthz HTTP/1.1\r\nHost: \x00\r\n\r\n",
			"GET /healthz HTTP/1.x\r\nHost: x\r\n\r\n", "GET /healthz HTTP/01.1\r\nHost: x\r\n\r\n",
			"GET /healthz http/1.1\r\nHost: x\r\n\r\n", "GET /healthz HTTP/1.1\nHost: x\n\n", "GET /healthz HTTP/1.1\rHost: x\r\r"}))
	case 3:
		req.protocolStatus = http.StatusHTTPVersionNotSupported
		req.raw = []byte(g.pick([]string{"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", "GET /healthz HTTP/3.0\r\nHost: x\r\n\r\n",
			"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "GET /healthz HTTP/0.9\r\nHost: x\r\n\r\n"}))
	case 4:
		req.raw = []byte(g.pick([]string{"G\x00T /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "GET\t/healthz HTTP/1.1\r\nHost: x\r\n\r\n",
			strings.Repeat("A", 5000) + " /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "get /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
			"CONNECT 127.0.0.1:6379 HTTP/1.1\r\nHost: 127.0.0.1:6379\r\n\r\n", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
			"GET * HTTP/1.1\r\nHost: x\r\n\r\n", "GET http://evil.example/healthz HTTP/1.1\r\nHost: x\r\n\r\n",
			"GET healthz HTTP/1.1\r\nHost: x\r\n\r\n", "GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n",
			"GET /api/v1/activities/\xff\xfe/join HTTP/1.1\r\nHost: x\r\n\r\n", "GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
			"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", "GET /api/v1/tokens/" + strings.Repeat("\xff", 100) + " HTTP/1.1\r\nHost: x\r\n\r\n"}))
	case 5: // header syntax
		req.raw = []byte("GET /healthz HTTP/1.1\r\nHost: x\r\n" + g.pick([]string{"Bad Header: x\r\n", "X-\x00: y\r\n", ": empty\r\n",
			"X-A: a\r\n folded\r\n", "NoColon\r\n", "X-A: \x00\x01\x7f\r\n", "X-A: \xff\xfe\r\n", "X-A:" + strings.Repeat(" ", 5000) + "v\r\n",
			"X-\xff: v\r\n", "Content-Length: 0\r\nContent-Length: 0\r\n"}) + "\r\n")
	case 6: // Content-Length lies
		body := broken
		req.raw = []byte("POST " + openJoin + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
			g.pick([]string{"Content-Length: -1\r\n", "Content-Length: abc\r\n", "Content-Length: 1, 2\r\n",
				"Content-Length: 10\r\nContent-Length: 11\r\n", "Content-Length: 99999999999999999999\r\n",
				"Content-Length: +10\r\n", "Content-Length: 0x0a\r\n", "Content-Length:  10 \r\n"}) + "\r\n" + body)
		req.halfClose = true
	case 7: // more body promised than sent
		req.raw = []byte("POST " + openJoin + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n" + broken)
		req.halfClose = true
	case 8: // Content-Length and Transfer-Encoding together
		req.raw = []byte("POST " + draftJoin + " HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		req.responses = 2
	case 9: // chunked framing
		req.raw = []byte("POST " + openJoin + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
			g.pick([]string{"zz\r\nabc\r\n0\r\n\r\n", "ffffffffffffffffffff\r\nabc\r\n0\r\n\r\n", "5\r\nab\r\n0\r\n\r\n",
				"3;ext=\"\x00\"\r\n{\"u\r\n0\r\n\r\n", "-1\r\n\r\n", "a\r\n" + broken + "\r\n", "3\r\nabc", "0\r\nX-Trailer: \x00\r\n\r\n"}))
		req.halfClose = true
	case 10: // unsupported transfer codings
		req.protocolStatus = http.StatusNotImplemented
		req.raw = []byte("POST " + openJoin + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " +
			g.pick([]string{"gzip", "chunked, gzip", "gzip, chunked", "identity", "chunked\r\nTransfer-Encoding: chunked", "\x00chunked", "xchunked"}) +
			"\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
		req.halfClose = true
	case 11: // header over 16 KiB
		req.raw = []byte("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: " + strings.Repeat("h", 20<<10) + "\r\n\r\n")
	case 12: // request line over 16 KiB
		req.raw = []byte("GET /" + strings.Repeat("p", 20<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n")
	case 13: // headers that never end
		req.raw = []byte("GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: b\r\n")
		req.halfClose = true
	case 14: // a body far over the limit, with its length
		n := 1 << 20
		req.raw = append([]byte("POST "+openJoin+" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(n)+"\r\n\r\n"),
			bytes.Repeat([]byte{'{'}, n)...)
	case 15: // pipelined requests, the first one broken
		req.raw = []byte("POST " + draftJoin + " HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" +
			"POST " + openJoin + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(broken)) + "\r\n\r\n" + broken)
		req.responses = 3
	case 16: // Expect with a body over the limit
		req.raw = []byte("POST " + openJoin + " HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 100000\r\n\r\n")
		req.halfClose = true
		req.responses = 2
	case 17: // upgrades
		req.raw = []byte("GET /healthz HTTP/1.1\r\nHost: x\r\n" + g.pick([]string{"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n",
			"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"}) + "\r\n")
	case 18: // HTTP/1.0 without Host, keep-alive
		req.raw = []byte("GET /api/v1/tokens/" + strings.Repeat("A", activity.TokenLen) + " HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	case 19: // invalid UTF-8 and controls in a header of an API call
		req.raw = []byte("POST " + draftJoin + " HTTP/1.1\r\nHost: x\r\nIdempotency-Key: \xff\xfe\x80\r\nAuthorization: Bearer \xc0\xaf\r\n" +
			"Content-Length: 16\r\n\r\n{\"userId\":\"u-1\"}")
	case 20: // admin token in odd places
		req.admin = true
		req.raw = []byte("POST /api/v1/admin/activities HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer\r\n\tfolded-" + g.adminToken + "\r\n" +
			"Content-Length: 2\r\n\r\n{}")
	case 21: // absolute-form to an admin route, token in the URL
		req.admin = true
		req.raw = []byte("GET http://user:" + g.adminToken + "@x/api/v1/admin/activities HTTP/1.1\r\nHost: x\r\n\r\n")
	case 22: // NUL in the body and Content-Type
		req.raw = []byte("POST " + openJoin + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\x00\r\nContent-Length: 5\r\n\r\n\x00\x00\x00\x00\x00")
	default: // a random header block
		var sb strings.Builder
		sb.WriteString("POST " + openJoin + " HTTP/1.1\r\nHost: x\r\n")
		for range 1 + g.r.IntN(10) {
			sb.WriteString(g.text(1+g.r.IntN(20)) + ": " + g.text(g.r.IntN(100)) + "\r\n")
		}
		sb.WriteString("Content-Length: " + strconv.Itoa(len(broken)) + "\r\n\r\n" + broken)
		req.raw = []byte(sb.String())
	}
	return req
}

// garbageResult is what became of one request.
type garbageResult struct {
	statuses []int
	location string
	body     []byte
	err      error
}

var garbageClient = &http.Client{
	Transport: &http.Transport{MaxIdleConnsPerHost: garbageWorkers, DisableCompression: true},
	Timeout:   20 * time.Second,
	// A redirect is an answer to check, not to follow.
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// chunkedReader hides a body's length, so that the client sends it chunked.
type chunkedReader struct{ io.Reader }

func (g *garbageRequest) send(base, addr string) garbageResult {
	if g.raw != nil {
		return g.sendRaw(addr)
	}
	var body io.Reader = bytes.NewReader(g.body)
	if g.chunked {
		body = chunkedReader{body}
	}
	req, err := http.NewRequest(g.method, base+g.path, body)
	if err != nil {
		return garbageResult{err: fmt.Errorf("building the request: %w", err)}
	}
	for _, h := range g.header {
		req.Header.Add(h[0], h[1])
	}
	if g.host != "" {
		req.Host = g.host
	}
	resp, err := garbageClient.Do(req)
	if err != nil {
		return garbageResult{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return garbageResult{statuses: []int{resp.StatusCode}, location: resp.Header.Get("Location"), body: b, err: err}
}

// sendRaw writes the raw bytes and reads up to the expected answers; the
// server closing the connection instead is fine.
func (g *garbageRequest) sendRaw(addr string) garbageResult {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return garbageResult{err: err}
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	var res garbageResult
	// The server may answer and close before reading everything.
	if _, err := conn.Write(g.raw); err != nil && !closedByPeer(err) {
		return garbageResult{err: err}
	}
	if g.halfClose {
		conn.(*net.TCPConn).CloseWrite()
	}
	br := bufio.NewReader(conn)
	for range g.responses {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			if !closedByPeer(err) {
				res.err = err
			}
			return res
		}
		res.body, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		res.statuses = append(res.statuses, resp.StatusCode)
		if resp.StatusCode == http.StatusContinue {
			continue
		}
	}
	return res
}

func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// errorJSON reports how body differs from the error JSON of the contract.
func errorJSON(body []byte) error {
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(body, &outer); err != nil {
		return fmt.Errorf("not JSON: %v", err)
	}
	var detail struct {
		Code    string          `json:"code"`
		Message string          `json:"message"`
		Tokens  json.RawMessage `json:"tokens"`
	}
	if len(outer) != 1 || outer["error"] == nil || json.Unmarshal(outer["error"], &detail) != nil ||
		detail.Code == "" || detail.Message == "" {
		return errors.New(`not {"error": {"code": ..., "message": ...}}`)
	}
	return nil
}

// TestGarbageTraffic sends 10,000 random and malicious requests to every
// route of a whole App (Redis, MariaDB, a Kafka-protocol broker), 32 at a
// time: nothing answers 5xx, nothing is taken, nothing changes, and the App
// serves a valid join afterwards.
func TestGarbageTraffic(t *testing.T) {
	b := newBroker(t)
	cfg := kafkaConfig(t, b)
	cfg.SignInFailures = httpapi.Limit{} // the garbage fails to sign in by the hundred
	app := startApp(t, cfg)
	open := openActivity(t, app, 100, 1)
	closed := openActivity(t, app, 10, 1)
	if code := send(t, app, "POST", fmt.Sprintf("/api/v1/admin/activities/%d/close", closed), "", nil); code != http.StatusOK {
		t.Fatalf("close: %d", code)
	}
	var draft struct{ ID int64 }
	if code := send(t, app, "POST", "/api/v1/admin/activities",
		`{"name":"draft","stock":5,"beginAt":"2030-01-01T00:00:00Z","endAt":"2030-01-02T00:00:00Z"}`, &draft); code != http.StatusCreated {
		t.Fatalf("create draft: %d", code)
	}
	before := garbageSnapshot(t, app, open, draft.ID, closed)

	seed := *garbageSeed
	t.Logf("seed %d (rerun with -garbage.seed=%d)", seed, seed)
	gen := newGarbageGen(seed, open, draft.ID, closed, app.AdminToken())
	reqs := make([]garbageRequest, garbageRequests)
	for i := range reqs {
		reqs[i] = gen.next()
	}

	results := make([]garbageResult, len(reqs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range garbageWorkers {
		wg.Go(func() {
			for i := range next {
				results[i] = reqs[i].send(app.URL(), app.Addr())
			}
		})
	}
	start := time.Now()
	for i := range reqs {
		next <- i
	}
	close(next)
	wg.Wait()
	t.Logf("%d requests in %v", len(reqs), time.Since(start).Round(time.Millisecond))

	var failures []string
	fail := func(i int, format string, args ...any) {
		r := reqs[i]
		what := r.method + " " + r.path
		if r.raw != nil {
			what = "raw " + strconv.Quote(string(r.raw[:min(len(r.raw), 200)]))
		} else if len(what) > 200 {
			what = what[:200] + "…"
		}
		failures = append(failures, fmt.Sprintf("#%d %s %s: %s", i, r.kind, what, fmt.Sprintf(format, args...)))
	}
	counts := map[string]int{}
	for i, res := range results {
		r := reqs[i]
		if res.err != nil {
			if r.raw == nil {
				fail(i, "%v", res.err)
			} else {
				fail(i, "no answer and the connection not closed: %v", res.err)
			}
			continue
		}
		if len(res.statuses) == 0 {
			counts[r.kind+" closed"]++
			continue
		}
		for _, status := range res.statuses {
			counts[fmt.Sprintf("%s %d", r.kind, status)]++
			switch {
			case status == r.protocolStatus:
			case status >= 500:
				fail(i, "answered %d %.300s", status, res.body)
			case r.admin && !r.authorized && status >= 200 && status < 300:
				fail(i, "admin answered %d without the admin token", status)
			}
		}
		status := res.statuses[len(res.statuses)-1]
		switch {
		case r.raw != nil || status < 400 && status >= 200 || r.method == "HEAD":
		case status >= 300 && status < 400:
			// gin redirects a path with a trailing slash to the one without.
			if loc := strings.TrimSuffix(strings.SplitN(r.path, "?", 2)[0], "/"); res.location != loc {
				fail(i, "redirected to %q", res.location)
			}
		case status == http.StatusRequestHeaderFieldsTooLarge, status == http.StatusExpectationFailed:
			// net/http's own answers, before the API.
		default:
			if err := errorJSON(res.body); err != nil {
				fail(i, "answered %d %.300s: %v", status, res.body, err)
			}
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "\n  %-28s %d", k, counts[k])
	}
	t.Logf("answers:%s", sb.String())
	for _, f := range failures[:min(len(failures), 400)] {
		t.Error(f)
	}
	if len(failures) > 400 {
		t.Errorf("… and %d more", len(failures)-400)
	}

	t.Run("NothingTaken", func(t *testing.T) {
		if after := garbageSnapshot(t, app, open, draft.ID, closed); after != before {
			t.Fatalf("the garbage changed state:\nbefore %+v\nafter  %+v", before, after)
		}
	})

	t.Run("StillServing", func(t *testing.T) {
		if code := send(t, app, "GET", "/healthz", "", nil); code != http.StatusOK {
			t.Fatalf("healthz %d", code)
		}
		if code := send(t, app, "GET", "/readyz", "", nil); code != http.StatusOK {
			t.Fatalf("readyz %d", code)
		}
		a := joinHTTP(app.URL(), open, "after-garbage")
		if a.status != http.StatusOK {
			t.Fatalf("a valid join after the garbage: %d %s", a.status, a.code)
		}
		checkTokens(t, app.URL(), map[string]joinAnswer{a.token: a})
		converged(t, app, open, 100, 1)
	})
}

// garbageState is everything the garbage must leave as it was.
type garbageState struct {
	open                       stats
	activities, participations int
	draft, openJSON, closed    string
}

func garbageSnapshot(t *testing.T, app *App, open, draft, closed int64) garbageState {
	t.Helper()
	s := garbageState{open: activityStats(t, app, open)}
	s.open.ReconciledAt = nil // the job moves it on
	if err := app.db.Get(&s.activities, "SELECT COUNT(*) FROM activities"); err != nil {
		t.Fatal(err)
	}
	if err := app.db.Get(&s.participations, "SELECT COUNT(*) FROM participations"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		id  int64
		dst *string
	}{{draft, &s.draft}, {open, &s.openJSON}, {closed, &s.closed}} {
		var a struct {
			Name, Description, State string
			Stock, PerUserLimit      int64
			BeginAt, EndAt           time.Time
			UpdatedAt                time.Time
		}
		if code := send(t, app, "GET", fmt.Sprintf("/api/v1/admin/activities/%d", p.id), "", &a); code != http.StatusOK {
			t.Fatalf("get activity %d: %d", p.id, code)
		}
		*p.dst = fmt.Sprintf("%+v", a)
	}
	return s
}
