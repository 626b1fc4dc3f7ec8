package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"seckill/activity"
	"seckill/activity/httpapi"
	"seckill/internal/testenv"
)

// The fuzz targets send arbitrary bodies, ids and headers to a Server over
// HTTP on the real Redis and MariaDB, one input at a time, and compare each
// answer with the reference model of the contract, openapi.yaml, in
// model_test.go. Their seed corpus runs with every go test; `make fuzz` runs
// them for a while.

// fuzzServer is a Server on a test environment of its own, served over HTTP.
type fuzzServer struct {
	env    *testenv.Env
	url    string
	client *http.Client
	logs   *logSink
}

// logSink keeps what the Server and the Service log: a fuzz target may not
// log through f while it runs, and each input checks the sink instead.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// take returns what was logged since the last call.
func (l *logSink) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.buf.String()
	l.buf.Reset()
	return s
}

func newFuzzServer(f *testing.F) *fuzzServer {
	f.Helper()
	env := testenv.New(f, testenv.Options{})
	logs := &logSink{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// env.Svc logs to f, which must not be called inside the fuzz function:
	// the Server gets a Service of its own on the same stores.
	svc := activity.NewService(env.Repo, env.Store, env.Repo, env.Signer, log)
	srv := httptest.NewServer(httpapi.New(svc, httpapi.Config{AdminToken: adminToken, Log: log}))
	f.Cleanup(srv.Close)
	client := srv.Client()
	client.Timeout = 10 * time.Second // an answer slower than this is a hang
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &fuzzServer{env: env, url: srv.URL, client: client, logs: logs}
}

type fuzzReply struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request; path is already escaped.
func (s *fuzzServer) do(t *testing.T, method, path string, body []byte, header http.Header) fuzzReply {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("request %s %q: %v", method, path, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v (a hang or a dropped connection)\nserver log: %s", method, path, err, s.logs.take())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return fuzzReply{status: resp.StatusCode, header: resp.Header, body: b}
}

// checkLogs fails when the server logged an error while serving an input.
func (s *fuzzServer) checkLogs(t *testing.T, input string) {
	t.Helper()
	if l := s.logs.take(); strings.Contains(l, "level=ERROR") {
		t.Errorf("the server logged an error for %s:\n%s", input, l)
	}
}

// validHeaderValue reports whether net/http sends v as a header value.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// joinFuzzLimit is the per-user limit of the fuzzed activity: small, so
// that inputs reach both a token and limit_reached.
const joinFuzzLimit = 3

// Placeholders for path ids in the corpus: the activities of the fuzzing
// process. Any other id is sent as it is.
const (
	idOpen   = "$open"
	idDraft  = "$draft"
	idClosed = "$closed"
)

// joinSeeds are bodies for FuzzJoin's seed corpus: valid joins, each kind of
// the bad-input table of badinput_test.go, and hostile bodies.
func joinSeeds() []string {
	nest := func(open, close string, n int) string {
		return strings.Repeat(open, n) + strings.Repeat(close, n)
	}
	return []string{
		`{"userId":"u-1"}`,
		`{"userId":"A.b_c-9"}`,
		`{"userId":"` + strings.Repeat("x", 64) + `"}`,
		" \t\r\n{ \"userId\" : \"spaced\" }\n ",
		`{"user\u0049d":"escaped-name"}`,
		`{"userId":"\u0075-escaped-value"}`,
		`{"userId":"padded"}` + strings.Repeat(" ", httpapi.MaxBodyBytes-len(`{"userId":"padded"}`)),
		// The bad-input table.
		`{"userId":`, ``, `[{"userId":"u-ok"}]`, `"u-ok"`, `{"userId":"u-ok","vip":true}`,
		`{"userId":12345}`, `{"userId":null}`, `{}`, `{"userId":""}`, `{"userId":"u ok"}`,
		`{"userId":"u/ok"}`, `{"userId":"u:ok"}`, `{"userId":"üser"}`, `{"userId":"<script>"}`,
		`{"userId":"u\u0000ok"}`, `{"userId":"` + strings.Repeat("u", 65) + `"}`,
		`{"userId":"u-ok"} x`, `{"userId":"u-ok"}{"userId":"u-ok2"}`,
		`{"userId":"` + strings.Repeat("u", 9000) + `"}`,
		`{"userId":"u-ok"}` + strings.Repeat(" ", 9000),
		`{"userId":"padded"}` + strings.Repeat(" ", httpapi.MaxBodyBytes-len(`{"userId":"padded"}`)+1),
		// Numbers, literals and types.
		`{"userId":1e999999}`, `{"userId":-0}`, `{"userId":123456789012345678901234567890}`,
		`{"userId":true}`, `{"userId":NaN}`, `{"userId":Infinity}`, `{"userId":0x10}`,
		`{"userId":["u-1"]}`, `{"userId":{"userId":"u-1"}}`, `null`, `true`, `42`, `[]`,
		// Unicode and encodings.
		"\xef\xbb\xbf{\"userId\":\"bom\"}",
		"{\"userId\":\"\xff\xfe\"}", "{\"userId\":\"u-1\"}\x00", "\x00",
		`{"userId":"\ud800"}`, `{"userId":"u\u00adx"}`, `{"userId":"ｕ-1"}`, `{"userId":"١٢٣"}`,
		"{\"userId\":\"u-1\u2028\"}", `{'userId':'u-1'}`, `{userId:"u-1"}`,
		"\xfe\xff\x00{\x00\"",
		// Names given twice or in another case (encoding/json would take them).
		`{"userId":"u-1","userId":null}`, `{"userId":"u-1","userId":5}`, `{"userId":"alice","userId":"mallory"}`,
		`{"userId":"alice","USERID":"mallory"}`, `{"USERID":"mallory"}`, `{"userid":"mallory"}`, `{"uſerId":"mallory"}`,
		// Nesting under the body limit.
		nest("[", "]", 4000),
		`{"userId":"u-1","x":` + nest("[", "]", 3000) + `}`,
		`{"a":` + strings.Repeat(`{"a":`, 1300) + `1` + strings.Repeat(`}`, 1301),
		`{"userId":"` + strings.Repeat(`\u0000`, 1300) + `"}`,
		// Injection-looking values.
		`{"userId":"' OR '1'='1"}`, `{"userId":"1; DROP TABLE participations; --"}`,
		`{"userId":"seckill:{1}:used"}`, `{"userId":"*"}`, `{"userId":"..\/..\/etc\/passwd"}`,
		`{"userId":"%00"}`, `{"userId":"u-1\r\nX-Injected: 1"}`,
	}
}

// FuzzJoin sends arbitrary bodies, path ids and Idempotency-Key values to the
// join endpoint. Every answer is a status of the contract with its error
// JSON; a token only for a valid join; nothing taken by any other answer.
func FuzzJoin(f *testing.F) {
	s := newFuzzServer(f)
	ctx := context.Background()
	open := s.env.OpenActivity(f, activity.MaxStock, joinFuzzLimit)
	closed := s.env.OpenActivity(f, 10, 1)
	if _, err := s.env.Svc.Transition(ctx, closed.ID, activity.ActionClose); err != nil {
		f.Fatal(err)
	}
	name, stock := "draft", int64(10)
	begin, end := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	draft, err := s.env.Svc.Create(ctx, activity.Fields{Name: &name, Stock: &stock, BeginAt: &begin, EndAt: &end})
	if err != nil {
		f.Fatal(err)
	}
	ids := map[string]int64{idOpen: open.ID, idDraft: draft.ID, idClosed: closed.ID}

	for _, b := range joinSeeds() {
		f.Add([]byte(b), idOpen, "")
	}
	for _, id := range []string{idDraft, idClosed, "", "0", "-1", "abc", "99999999999999999999", "987654321", "1.5",
		" 1", "+1", "0x1", "1e3", "..", ".", "%2e%2e", "1/../2", "1;DROP TABLE activities", "1 OR 1=1",
		strings.Repeat("9", 300), "١", "1\x00", "\xff", "/", "?", "#"} {
		f.Add([]byte(`{"userId":"u-path"}`), id, "")
	}
	for _, key := range []string{"k-1", "k-1", "retry:2026-11-11", " padded ", strings.Repeat("k", 128),
		strings.Repeat("k", 129), "k\x00", "k\r\nX-Injected: 1", "ключ", "k/1", "k 1", "\t"} {
		f.Add([]byte(`{"userId":"u-key"}`), idOpen, key)
	}
	f.Add([]byte(`{"userId":"u-key"}`), idDraft, "k-1")
	f.Add([]byte(`{"userId":"u-1"`), idOpen, "k-bad-body")

	held := map[string][]string{}  // user → tokens answered 200, in order
	replays := map[string]string{} // user, key → token of the first 200

	f.Fuzz(func(t *testing.T, body []byte, id, key string) {
		pathID, target := id, int64(0)
		if n, ok := ids[id]; ok {
			pathID, target = strconv.FormatInt(n, 10), n
		} else if n, err := strconv.ParseInt(id, 10, 64); err == nil && n >= 1 {
			target = n // the server reads ids with ParseInt too
		}
		header := http.Header{}
		// net/http refuses to send control characters; such a key is absent.
		// The server sees the value trimmed.
		key = strings.Trim(key, " \t")
		if key != "" && validHeaderValue(key) {
			header.Set("Idempotency-Key", key)
		} else {
			key = ""
		}
		input := fmt.Sprintf("body %q, id %q, key %q", body, id, key)

		before := s.counters(t, open.ID)
		r := s.do(t, "POST", "/api/v1/activities/"+url.PathEscape(pathID)+"/join", body, header)
		after := s.counters(t, open.ID)
		s.checkLogs(t, input)
		if after.InFlight != 0 {
			t.Errorf("%s: %d claims left in flight after the answer", input, after.InFlight)
		}
		taken := after.Claimed - before.Claimed

		switch r.status {
		case http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("%s: answered %d %s (want 200, 400, 404, 409 or 413)", input, r.status, r.body)
		}
		user, valid := joinUser(body)

		if r.status != http.StatusOK {
			e, err := errorOf(r)
			if err != nil {
				t.Fatalf("%s: answered %d %s: %v", input, r.status, r.body, err)
			}
			if taken != 0 {
				t.Fatalf("%s: answered %d %s but took %d slots", input, r.status, r.body, taken)
			}
			if !valid {
				return
			}
			if e.Code == "limit_reached" {
				s.checkHeld(t, input, e.Tokens, held[user])
			}
			if first, ok := replays[user+"\x00"+key]; ok && target == open.ID {
				t.Fatalf("%s: a retry of the join first answered %s got %d %s", input, first, r.status, r.body)
			}
			// A valid join is refused only for what the contract says.
			want := map[int64]string{open.ID: "limit_reached", draft.ID: "not_open", closed.ID: "not_open"}[target]
			switch {
			case key != "" && r.status == http.StatusBadRequest && strings.Contains(strings.ToLower(e.Message), "idempotency"):
				// a key the server does not take: named in the message
			case target == 0:
				if r.status != http.StatusBadRequest && r.status != http.StatusNotFound {
					t.Fatalf("%s: bad id answered %d %s, want 400 or 404", input, r.status, r.body)
				}
			case want == "":
				if e.Code != "not_found" {
					t.Fatalf("%s: unknown activity answered %d %s, want 404 not_found", input, r.status, r.body)
				}
			case e.Code != want:
				t.Fatalf("%s: answered %d %s, want %s", input, r.status, r.body, want)
			case want == "limit_reached" && len(held[user]) < joinFuzzLimit:
				t.Fatalf("%s: limit_reached for %s, who holds %d of %d tokens", input, user, len(held[user]), joinFuzzLimit)
			}
			return
		}

		if !valid || target != open.ID {
			t.Fatalf("%s: answered 200 %s to a request that is not a valid join of activity %d", input, r.body, open.ID)
		}
		var tok tokenJSON
		if err := json.Unmarshal(r.body, &tok); err != nil {
			t.Fatalf("%s: 200 body %s: %v", input, r.body, err)
		}
		if tok.UserID != user || tok.ActivityID != open.ID || len(tok.Token) != activity.TokenLen || tok.IssuedAt.IsZero() {
			t.Fatalf("%s: 200 body %s, want a token of activity %d for %q", input, r.body, open.ID, user)
		}
		replayKey := user + "\x00" + key
		switch first, seen := replays[replayKey]; {
		case taken == 1 && !slices.Contains(held[user], tok.Token):
			if len(held[user]) >= joinFuzzLimit {
				t.Fatalf("%s: %s got token %d over the limit of %d", input, user, len(held[user])+1, joinFuzzLimit)
			}
			held[user] = append(held[user], tok.Token)
			if key != "" {
				replays[replayKey] = tok.Token
			}
		case taken == 0 && key != "" && seen && first == tok.Token:
			// a retry answered with its first token
		default:
			t.Fatalf("%s: 200 with token %s took %d slots (first token for this key: %q, held: %q)",
				input, tok.Token, taken, first, held[user])
		}
		lookup := s.do(t, "GET", "/api/v1/tokens/"+url.PathEscape(tok.Token), nil, nil)
		var got tokenJSON
		if lookup.status != http.StatusOK || json.Unmarshal(lookup.body, &got) != nil || got.Token != tok.Token || got.UserID != user {
			t.Fatalf("%s: token %s answered at join, lookup gives %d %s", input, tok.Token, lookup.status, lookup.body)
		}
	})
}

func (s *fuzzServer) counters(t *testing.T, id int64) activity.Counters {
	t.Helper()
	c, ok, err := s.env.Store.Counters(context.Background(), id)
	if err != nil || !ok {
		t.Fatalf("counters of activity %d: present %v, %v", id, ok, err)
	}
	return c
}

// checkHeld checks the tokens a limit_reached answer lists: those the user
// was answered.
func (s *fuzzServer) checkHeld(t *testing.T, input string, listed []tokenJSON, want []string) {
	t.Helper()
	var got []string
	for _, tk := range listed {
		got = append(got, tk.Token)
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Fatalf("%s: limit_reached lists tokens %q, want those answered: %q", input, got, want)
	}
}

// adminSeeds are bodies for the admin fuzz targets' seed corpus.
func adminSeeds() []string {
	const (
		begin = `"beginAt":"2030-01-01T00:00:00Z"`
		end   = `"endAt":"2030-01-02T00:00:00Z"`
	)
	valid := `{"name":"ok","stock":5,` + begin + `,` + end + `}`
	return []string{
		valid,
		`{"name":"full","description":"win a phone","stock":1000,"perUserLimit":2,` + begin + `,` + end + `}`,
		`{"name":"` + strings.Repeat("é", 128) + `","description":"` + strings.Repeat("ü", 2000) + `","stock":10000000,"perUserLimit":1000,"beginAt":"2030-01-01T00:00:00Z","endAt":"2030-01-01T00:00:00.001Z"}`,
		`{"name":"emoji 🎉𝄞","stock":1,"perUserLimit":null,"description":null,` + begin + `,` + end + `}`,
		`{"name":"nul\u0000and\ttab","stock":1,` + begin + `,` + end + `}`,
		`{"name":" ","stock":1,` + begin + `,` + end + `}`,
		`{"name":"trailing space   ","stock":1,` + begin + `,` + end + `}`,
		`{"name":"zones","stock":1,"beginAt":"2030-01-01T23:00:00-05:00","endAt":"2030-01-02T00:00:00+14:00"}`,
		`{"name":"nanos","stock":1,"beginAt":"2030-01-01T00:00:00.0001Z","endAt":"2030-01-01T00:00:00.0009Z"}`,
		`{"name":"edges","stock":1,"beginAt":"2000-01-01T00:00:00Z","endAt":"9999-12-31T23:59:59.999Z"}`,
		`{"name":"early","stock":1,"beginAt":"1999-12-31T23:59:59Z",` + end + `}`,
		`{"name":"late","stock":1,` + begin + `,"endAt":"9999-12-31T23:00:00-05:00"}`,
		`{"name":"leap","stock":1,"beginAt":"2030-02-29T00:00:00Z",` + end + `}`,
		`{"name":"second 60","stock":1,"beginAt":"2030-06-30T23:59:60Z",` + end + `}`,
		`{"name":"lower t","stock":1,"beginAt":"2030-01-01t00:00:00z",` + end + `}`,
		`{}`, `{"name":"patched"}`, `{"stock":7}`, `{"description":""}`, `{"perUserLimit":3}`,
		`{"beginAt":"2029-12-31T00:00:00Z"}`, `{"endAt":"2031-01-01T00:00:00Z"}`,
		// The bad-input table.
		`{"name":"x",`, ``, `[` + valid + `]`, `"x"`, `42`, `null`,
		`{"name":"ok","stock":5,` + begin + `,` + end + `,"color":"red"}`,
		`{"name":"ok","stock":"5",` + begin + `,` + end + `}`,
		`{"name":"ok","stock":1.5,` + begin + `,` + end + `}`,
		`{"name":"ok","stock":99999999999999999999,` + begin + `,` + end + `}`,
		`{"name":"ok","stock":0,` + begin + `,` + end + `}`,
		`{"name":"ok","stock":-1,` + begin + `,` + end + `}`,
		`{"name":"ok","stock":10000001,` + begin + `,` + end + `}`,
		`{"name":"ok",` + begin + `,` + end + `}`,
		`{"name":"ok","stock":5,"perUserLimit":0,` + begin + `,` + end + `}`,
		`{"name":"ok","stock":5,"perUserLimit":"1",` + begin + `,` + end + `}`,
		`{"name":"ok","stock":5,"perUserLimit":1001,` + begin + `,` + end + `}`,
		`{"name":"","stock":5,` + begin + `,` + end + `}`,
		`{"name":"` + strings.Repeat("n", 129) + `","stock":5,` + begin + `,` + end + `}`,
		`{"name":"` + strings.Repeat("é", 129) + `","stock":5,` + begin + `,` + end + `}`,
		`{"stock":5,` + begin + `,` + end + `}`,
		`{"name":5,"stock":5,` + begin + `,` + end + `}`,
		`{"name":"ok","description":"` + strings.Repeat("d", 2001) + `","stock":5,` + begin + `,` + end + `}`,
		`{"name":"ok","stock":5,"beginAt":"2030-01-02T00:00:00Z","endAt":"2030-01-01T00:00:00Z"}`,
		`{"name":"ok","stock":5,"beginAt":"2030-01-02T00:00:00Z","endAt":"2030-01-02T00:00:00Z"}`,
		`{"name":"ok","stock":5,"beginAt":"2030-01-01 00:00:00",` + end + `}`,
		`{"name":"ok","stock":5,` + begin + `,"endAt":"tomorrow"}`,
		`{"name":"ok","stock":5,"beginAt":1893456000,` + end + `}`,
		`{"name":"ok","stock":5,` + end + `}`,
		valid + ` x`, valid + valid,
		`{"name":"ok","description":"` + strings.Repeat("d", 9000) + `","stock":5,` + begin + `,` + end + `}`,
		`{"state":"open"}`, `{"id":1}`, `{"stock":0}`, `{"name":""}`, `{"endAt":"2029-12-31T00:00:00Z"}`,
		`{"beginAt":"soon"}`, `{"name":"x"}]`,
		// Numbers.
		`{"stock":1e3}`, `{"stock":1E+3}`, `{"stock":-0}`, `{"stock":9223372036854775807}`,
		`{"stock":9223372036854775808}`, `{"stock":-9223372036854775808}`, `{"stock":1e999999}`,
		`{"stock":10000000.0}`, `{"stock":01}`, `{"stock":+1}`, `{"perUserLimit":4294967297}`,
		`{"stock":true}`, `{"stock":[5]}`, `{"stock":{"n":5}}`,
		// Times.
		`{"beginAt":"0000-01-01T00:00:00Z"}`, `{"beginAt":"-0001-01-01T00:00:00Z"}`, `{"endAt":"10000-01-01T00:00:00Z"}`,
		`{"beginAt":"2030-13-01T00:00:00Z"}`, `{"beginAt":"2030-01-01T24:00:00Z"}`, `{"beginAt":"2030-01-01T00:00:00+24:00"}`,
		`{"beginAt":"2030-01-01T00:00:00.1234567891234Z"}`, `{"beginAt":""}`, `{"beginAt":null}`,
		// Unicode, encodings, literals.
		"\xef\xbb\xbf" + valid, "{\"name\":\"\xff\xfe\",\"stock\":1," + begin + "," + end + "}",
		`{"name":"\ud800\udfff\ud800","stock":1,` + begin + `,` + end + `}`,
		`{"name":"` + strings.Repeat("\U0001F600", 128) + `","stock":1,` + begin + `,` + end + `}`,
		`{"name":"` + strings.Repeat("\U0001F600", 129) + `","stock":1,` + begin + `,` + end + `}`,
		`{"name":"` + strings.Repeat("e\u0301", 64) + `","stock":1,` + begin + `,` + end + `}`,
		valid + "\x00", `{name:"ok"}`, `{'name':'ok'}`, `{"name":NaN}`,
		// Names given twice or in another case (encoding/json would take them).
		`{"name":"ok","name":5,"stock":5,` + begin + `,` + end + `}`, `{"stock":5,"stock":"5"}`,
		`{"name":"a","name":"b","stock":5,` + begin + `,` + end + `}`, `{"name":"ok","name":null,"stock":5,` + begin + `,` + end + `}`,
		`{"NAME":"a","stock":5,` + begin + `,` + end + `}`, `{"name":"a","stoc\u212a":5,` + begin + `,` + end + `}`,
		`{"name":"a","stocK":5,` + begin + `,` + end + `}`, `{"Name":"patched"}`,
		// Nesting and size.
		strings.Repeat("[", 4000) + strings.Repeat("]", 4000),
		`{"name":"ok","x":` + strings.Repeat(`{"a":`, 1300) + `1` + strings.Repeat(`}`, 1300) + `}`,
		`{"description":` + strings.Repeat(`[`, 3000) + strings.Repeat(`]`, 3000) + `}`,
		`{"name":"pad","stock":1,` + begin + `,` + end + `}` + strings.Repeat(" ", httpapi.MaxBodyBytes),
		// Injection-looking values, stored as they are.
		`{"name":"'; DROP TABLE activities; --","description":"\" OR 1=1 --","stock":1,` + begin + `,` + end + `}`,
		`{"name":"<script>alert(1)</script>","stock":1,` + begin + `,` + end + `}`,
		`{"name":"%s%n%x{{.}}${jndi:ldap://x}","stock":1,` + begin + `,` + end + `}`,
	}
}

// FuzzAdminCreate sends arbitrary bodies to create: 201 only for a valid
// activity, stored as sent; any other body 400 or 413 with the error JSON,
// and nothing created.
func FuzzAdminCreate(f *testing.F) {
	s := newFuzzServer(f)
	for _, b := range adminSeeds() {
		f.Add([]byte(b))
	}
	auth := http.Header{"Authorization": {"Bearer " + adminToken}}
	f.Fuzz(func(t *testing.T, body []byte) {
		input := fmt.Sprintf("body %q", body)
		before := s.activities(t)
		r := s.do(t, "POST", "/api/v1/admin/activities", body, auth)
		after := s.activities(t)
		s.checkLogs(t, input)
		want, valid := applyActivity(wantedActivity{perUserLimit: 1}, body)
		switch r.status {
		case http.StatusCreated:
			var got activityJSON
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatalf("%s: 201 body %s: %v", input, r.body, err)
			}
			if !valid {
				t.Fatalf("%s: created %s from a body that is not a valid activity", input, r.body)
			}
			if d := want.diff(got); d != "" {
				t.Fatalf("%s: created %s: %s", input, r.body, d)
			}
			if after != before+1 {
				t.Fatalf("%s: one 201, %d activities more", input, after-before)
			}
			stored, err := s.env.Repo.Activity(context.Background(), got.ID)
			if err != nil {
				t.Fatalf("%s: stored activity %d: %v", input, got.ID, err)
			}
			if d := want.diff(activityJSON{Name: stored.Name, Description: stored.Description, Stock: stored.Stock,
				PerUserLimit: stored.PerUserLimit, BeginAt: stored.BeginAt, EndAt: stored.EndAt, State: string(stored.State)}); d != "" {
				t.Fatalf("%s: MySQL holds another activity than sent: %s", input, d)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if _, err := errorOf(r); err != nil {
				t.Fatalf("%s: answered %d %s: %v", input, r.status, r.body, err)
			}
			if valid {
				t.Fatalf("%s: a valid activity answered %d %s", input, r.status, r.body)
			}
			if after != before {
				t.Fatalf("%s: answered %d but created %d activities", input, r.status, after-before)
			}
		default:
			t.Fatalf("%s: answered %d %s (want 201, 400 or 413)", input, r.status, r.body)
		}
	})
}

// FuzzAdminPatch sends arbitrary bodies to the patch of a draft: 200 only
// when the edited activity is valid, and then as edited; any other body 400
// or 413 with the error JSON, and the draft unchanged.
func FuzzAdminPatch(f *testing.F) {
	s := newFuzzServer(f)
	ctx := context.Background()
	name, desc, stock, perUser := "draft", "to be edited", int64(5), int64(2)
	begin := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	end := begin.Add(24 * time.Hour)
	draft, err := s.env.Svc.Create(ctx, activity.Fields{Name: &name, Description: &desc, Stock: &stock,
		PerUserLimit: &perUser, BeginAt: &begin, EndAt: &end})
	if err != nil {
		f.Fatal(err)
	}
	current := wantedActivity{name: name, description: desc, stock: stock, perUserLimit: perUser,
		beginAt: begin, endAt: end, hasBegin: true, hasEnd: true}
	for _, b := range adminSeeds() {
		f.Add([]byte(b))
	}
	path := fmt.Sprintf("/api/v1/admin/activities/%d", draft.ID)
	auth := http.Header{"Authorization": {"Bearer " + adminToken}}
	f.Fuzz(func(t *testing.T, body []byte) {
		input := fmt.Sprintf("body %q", body)
		before, err := s.env.Repo.Activity(ctx, draft.ID)
		if err != nil {
			t.Fatal(err)
		}
		r := s.do(t, "PATCH", path, body, auth)
		after, err := s.env.Repo.Activity(ctx, draft.ID)
		if err != nil {
			t.Fatal(err)
		}
		s.checkLogs(t, input)
		want, valid := applyActivity(current, body)
		switch r.status {
		case http.StatusOK:
			var got activityJSON
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatalf("%s: 200 body %s: %v", input, r.body, err)
			}
			if !valid {
				t.Fatalf("%s: patched to %s from a body that does not make a valid activity", input, r.body)
			}
			if d := want.diff(got); d != "" {
				t.Fatalf("%s: patched to %s: %s", input, r.body, d)
			}
			current = want
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if _, err := errorOf(r); err != nil {
				t.Fatalf("%s: answered %d %s: %v", input, r.status, r.body, err)
			}
			if valid {
				t.Fatalf("%s: a valid edit answered %d %s", input, r.status, r.body)
			}
			if !after.UpdatedAt.Equal(before.UpdatedAt) || after.Name != before.Name || after.Description != before.Description ||
				after.Stock != before.Stock || after.PerUserLimit != before.PerUserLimit ||
				!after.BeginAt.Equal(before.BeginAt) || !after.EndAt.Equal(before.EndAt) || after.State != before.State {
				t.Fatalf("%s: answered %d but the draft changed:\nbefore %+v\nafter  %+v", input, r.status, before, after)
			}
		default:
			t.Fatalf("%s: answered %d %s (want 200, 400 or 413)", input, r.status, r.body)
		}
	})
}

func (s *fuzzServer) activities(t *testing.T) int {
	t.Helper()
	var n int
	if err := s.env.DB.Get(&n, "SELECT COUNT(*) FROM activities"); err != nil {
		t.Fatal(err)
	}
	return n
}
