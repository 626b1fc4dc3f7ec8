package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"seckill/activity"
	"seckill/internal/testenv"
	"seckill/mq"
)

// broker starts a Kafka-protocol broker of the test's own, on a fixed port so
// that it can be stopped and started again at the same address.
type broker struct {
	t    *testing.T
	dir  string
	port int
	e    *mq.Embedded
}

func newBroker(t *testing.T) *broker {
	t.Helper()
	b := &broker{t: t, dir: t.TempDir()}
	b.start()
	_, port, _ := net.SplitHostPort(b.e.Brokers()[0])
	fmt.Sscan(port, &b.port)
	t.Cleanup(func() { b.stop() })
	return b
}

func (b *broker) start() {
	b.t.Helper()
	e, err := mq.StartEmbedded(b.dir, fmt.Sprintf("127.0.0.1:%d", b.port), mq.DefaultPartitions)
	if err != nil {
		b.t.Fatal(err)
	}
	b.e = e
}

func (b *broker) stop() {
	if b.e != nil {
		b.e.Close()
		b.e = nil
	}
}

func (b *broker) addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

// kafkaConfig is testConfig on a broker of the test's own, with a fast job.
func kafkaConfig(t *testing.T, b *broker) Config {
	t.Helper()
	cfg := testConfig(t)
	cfg.KafkaBrokers = []string{b.addr()}
	cfg.KafkaTopic = "seckill.test"
	// Generous: 2,000 concurrent joins under the race detector on two cores.
	cfg.ProduceTimeout = 10 * time.Second
	cfg.JobInterval = 100 * time.Millisecond
	return cfg
}

// openActivity creates, approves and opens an activity through the admin API.
func openActivity(t *testing.T, app *App, stock, perUser int) int64 {
	t.Helper()
	begin := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	end := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	var a struct{ ID int64 }
	body := fmt.Sprintf(`{"name":"storm","stock":%d,"perUserLimit":%d,"beginAt":%q,"endAt":%q}`, stock, perUser, begin, end)
	if code := send(t, app, "POST", "/api/v1/admin/activities", body, &a); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	for _, action := range []string{"approve", "open"} {
		if code := send(t, app, "POST", fmt.Sprintf("/api/v1/admin/activities/%d/%s", a.ID, action), "", nil); code != http.StatusOK {
			t.Fatalf("%s: %d", action, code)
		}
	}
	return a.ID
}

type joinAnswer struct {
	status int
	code   string
	shed   bool // a 503 of a join shed because too many were in progress
	token  string
	slot   int64
	user   string
	at     time.Time // when the answer came
}

var joinClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}

// joinHTTP joins an activity over HTTP; status 0 means the request failed.
// The join is recorded when the test records base's history.
func joinHTTP(base string, id int64, user string) joinAnswer {
	record := recordJoin(base, id, user)
	resp, err := joinClient.Post(fmt.Sprintf("%s/api/v1/activities/%d/join", base, id), "application/json",
		strings.NewReader(`{"userId":"`+user+`"}`))
	if err != nil {
		record(0, "", "", err)
		return joinAnswer{user: user, at: time.Now()}
	}
	defer resp.Body.Close()
	var body struct {
		Token string
		Slot  int64
		Error struct{ Code, Message string }
	}
	_ = jsonDecode(resp.Body, &body)
	record(resp.StatusCode, body.Error.Code, body.Token, nil)
	return joinAnswer{status: resp.StatusCode, code: body.Error.Code, token: body.Token, slot: body.Slot, user: user,
		at: time.Now(), shed: isShed(resp.StatusCode, body.Error.Message)}
}

// crowd joins with users concurrently, at most width at a time. A user
// told slots_in_flight, or shed because too many joins were in progress,
// comes back, as the answer asks (sooner than its Retry-After, to keep the
// tests short).
func crowd(base string, id int64, users []string, width int) []joinAnswer {
	out := make([]joinAnswer, len(users))
	inParallel(len(users), width, func(i int) {
		out[i] = joinAdmitted(base, id, users[i])
		for out[i].code == "slots_in_flight" {
			time.Sleep(10 * time.Millisecond)
			out[i] = joinAdmitted(base, id, users[i])
		}
	})
	return out
}

// inParallel calls f(0) to f(n-1), each in a goroutine of its own, at most
// width at a time, and returns when all have returned.
func inParallel(n, width int, f func(i int)) {
	sem := make(chan struct{}, width)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(i)
		}()
	}
	wg.Wait()
}

// joinAdmitted is joinHTTP, sent again while it is shed because too many
// joins are in progress, as the answer asks (sooner than its Retry-After,
// to keep the tests short): a test whose load the adaptive limit may judge
// too much on a slow machine (the race detector, a loaded CI) still gets
// each join's own answer.
func joinAdmitted(base string, id int64, user string) joinAnswer {
	a := joinHTTP(base, id, user)
	for a.shed {
		time.Sleep(10 * time.Millisecond)
		a = joinHTTP(base, id, user)
	}
	return a
}

// isShed tells whether an answer is the 503 of a join shed because too
// many were in progress.
func isShed(status int, message string) bool {
	return status == http.StatusServiceUnavailable && strings.HasPrefix(message, "the service is busy")
}

func users(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// tokens returns the tokens of the 200 answers, failing on a duplicate.
func tokens(t *testing.T, answers []joinAnswer) map[string]joinAnswer {
	t.Helper()
	got := map[string]joinAnswer{}
	slots := map[int64]bool{}
	var dupTokens, dupSlots []string
	for _, a := range answers {
		if a.status != http.StatusOK {
			continue
		}
		if _, dup := got[a.token]; dup {
			dupTokens = append(dupTokens, a.token)
		}
		if slots[a.slot] {
			dupSlots = append(dupSlots, strconv.FormatInt(a.slot, 10))
		}
		got[a.token], slots[a.slot] = a, true
	}
	if len(dupTokens) > 0 {
		t.Errorf("%d tokens handed out twice: %s", len(dupTokens), firstFew(dupTokens))
	}
	if len(dupSlots) > 0 {
		t.Errorf("%d slots handed out twice: %s", len(dupSlots), firstFew(dupSlots))
	}
	return got
}

// firstFew lists up to five of list, for a message.
func firstFew(list []string) string {
	if len(list) > 5 {
		return strings.Join(list[:5], ", ") + ", ..."
	}
	return strings.Join(list, ", ")
}

type stats struct {
	Claimed, InFlight, Issued, Recorded, Surplus int64
	ReconciledAt                                 *time.Time
}

func activityStats(t *testing.T, app *App, id int64) stats {
	t.Helper()
	var a struct{ Stats stats }
	if code := send(t, app, "GET", fmt.Sprintf("/api/v1/admin/activities/%d", id), "", &a); code != http.StatusOK {
		t.Fatalf("get activity: %d", code)
	}
	return a.Stats
}

// eventually polls cond every 50 ms until it holds or d has passed.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// converged waits until the sale is settled: want tokens issued, as many
// valid records, nothing in flight, and the MySQL snapshot written.
func converged(t *testing.T, app *App, id int64, stock, want int64) stats {
	t.Helper()
	var s stats
	eventually(t, 30*time.Second, "convergence", func() bool {
		s = activityStats(t, app, id)
		return s.Claimed == want && s.Issued == want && s.InFlight == 0 && s.Recorded == want &&
			s.Surplus == stock-want && s.ReconciledAt != nil
	})
	return s
}

// sellOut keeps demand going, in waves of new users, until the whole stock
// is issued and nothing is in flight; it adds the tokens answered to all and
// fails as soon as more than the stock have been answered.
func sellOut(t *testing.T, base string, admin *App, id int64, stock int, all map[string]joinAnswer) {
	t.Helper()
	round := 0
	eventually(t, 60*time.Second, "sale over", func() bool {
		round++
		for tok, a := range tokens(t, crowd(base, id, users(fmt.Sprintf("after%d-", round), 100), 50)) {
			all[tok] = a
		}
		if len(all) > stock {
			t.Fatalf("%d tokens answered, stock %d: oversold", len(all), stock)
		}
		s := activityStats(t, admin, id)
		return s.Issued == int64(stock) && s.InFlight == 0
	})
}

// checkTokens asserts that every token answered with 200 is valid. A lookup
// answered 503 (the state of the activity is being rebuilt) is asked again
// until it answers otherwise, for up to 30 s.
func checkTokens(t *testing.T, base string, got map[string]joinAnswer) {
	t.Helper()
	byStatus := map[int][]string{}
	deadline := time.Now().Add(30 * time.Second)
	for tok, a := range got {
		for {
			status, err := checkTokenHTTP(base, tok)
			if err != nil {
				t.Fatal(err)
			}
			if status == http.StatusServiceUnavailable && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			if status != http.StatusOK {
				byStatus[status] = append(byStatus[status], a.user)
			}
			break
		}
	}
	for status, users := range byStatus {
		t.Errorf("%d of %d tokens answered 200 at join answer %d now (users %s)", len(users), len(got), status, firstFew(users))
	}
}

func TestKafkaStorm(t *testing.T) {
	b := newBroker(t)
	app := startApp(t, kafkaConfig(t, b))
	id := openActivity(t, app, 100, 1)
	answers := crowd(app.URL(), id, users("u", 2000), 2000)
	got := tokens(t, answers)
	for _, a := range answers {
		if a.status != http.StatusOK && a.code != "sold_out" {
			t.Fatalf("join of %s: %d %s", a.user, a.status, a.code)
		}
	}
	if len(got) != 100 {
		t.Fatalf("%d tokens, want 100", len(got))
	}
	converged(t, app, id, 100, 100)
	checkTokens(t, app.URL(), got)

	var missing []string
	check := func() bool {
		resp, err := http.Get(app.URL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		missing = missing[:0]
		for _, want := range []string{`seckill_kafka_consumer_lag{partition="`, "seckill_records_written_total ",
			"seckill_kafka_produce_duration_seconds_count 100", "seckill_reconcile_drift 0", "seckill_claims_in_flight 0",
			`seckill_join_stage_duration_seconds_count{stage="record"} 100`, `seckill_join_stage_duration_seconds_count{stage="confirm"} 100`} {
			if !strings.Contains(string(body), want) {
				missing = append(missing, want)
			}
		}
		// Redeliveries count too: a batch MySQL refused once is written
		// again.
		if n := metricValue(string(body), "seckill_records_written_total"); n < 100 {
			missing = append(missing, fmt.Sprintf("seckill_records_written_total >= 100 (%v)", n))
		}
		// Every join that reached Redis claimed: the sold-out ones too.
		if n := metricValue(string(body), `seckill_join_stage_duration_seconds_count{stage="claim"}`); n < 100 {
			missing = append(missing, fmt.Sprintf(`seckill_join_stage_duration_seconds_count{stage="claim"} >= 100 (%v)`, n))
		}
		return len(missing) == 0
	}
	deadline := time.Now().Add(10 * time.Second) // the gauges follow the job's next cycle
	for !check() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if len(missing) > 0 {
		t.Errorf("metrics lack %q", missing)
	}
}

func TestKafkaBrokerDown(t *testing.T) {
	b := newBroker(t)
	cfg := kafkaConfig(t, b)
	cfg.ProduceTimeout = time.Second
	app := startApp(t, cfg)
	id := openActivity(t, app, 50, 1)
	h := recordHistory(t, app.URL(), id, 50, 1)
	before := tokens(t, crowd(app.URL(), id, users("before", 10), 10))
	if len(before) != 10 {
		t.Fatalf("%d tokens before the outage, want 10", len(before))
	}

	b.stop()
	start := time.Now()
	during := crowd(app.URL(), id, users("during", 20), 20)
	for _, a := range during {
		if a.status != http.StatusServiceUnavailable || a.code != "unavailable" {
			t.Fatalf("join while the broker is down: %d %s, want 503 unavailable", a.status, a.code)
		}
	}
	if waited := time.Since(start); waited > 10*time.Second {
		t.Errorf("joins took %v to fail, want about the produce timeout", waited)
	}
	if s := activityStats(t, app, id); s.Claimed != 10 || s.InFlight != 0 {
		t.Fatalf("after failed joins: %+v, want 10 claimed and nothing in flight", s)
	}

	b.start()
	var after map[string]joinAnswer
	round := 0
	eventually(t, 60*time.Second, "joins succeed again", func() bool {
		round++
		after = tokens(t, crowd(app.URL(), id, users(fmt.Sprintf("after%d-", round), 5), 5))
		return len(after) > 0
	})
	all := tokens(t, append(crowd(app.URL(), id, users("more", 10), 10), joinHTTP(app.URL(), id, "x")))
	n := int64(10 + len(after) + len(all))
	s := converged(t, app, id, 50, n)
	if s.Claimed != s.Issued {
		t.Fatalf("claimed %d, issued %d", s.Claimed, s.Issued)
	}
	checkTokens(t, app.URL(), before)
	checkTokens(t, app.URL(), after)
	h.check(t)
}

func TestKafkaMySQLDown(t *testing.T) {
	b := newBroker(t)
	cfg := kafkaConfig(t, b)
	dsn, err := gomysql.ParseDSN(cfg.MySQLDSN)
	if err != nil {
		t.Fatal(err)
	}
	direct := testenv.MySQLAt(t, cfg.MySQLDSN, dsn.Addr)
	proxy := mysqlViaProxy(t, &cfg)
	app := startApp(t, cfg)
	id := openActivity(t, app, 200, 1)

	proxy.Cut()
	got := tokens(t, crowd(app.URL(), id, users("u", 150), 50))
	if len(got) != 150 {
		t.Fatalf("%d of 150 joins succeeded while MySQL was down, want all", len(got))
	}
	time.Sleep(300 * time.Millisecond) // three job cycles, and the consumer's batches
	var rows int
	if err := direct.Get(&rows, "SELECT COUNT(*) FROM participations"); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Fatalf("%d records reached MySQL through a cut connection: the outage was not real", rows)
	}
	proxy.Restore()
	converged(t, app, id, 200, 150)
	checkTokens(t, app.URL(), got)
}

// TestKafkaAbandonedClaim plays a process that died after its event was
// acknowledged and before it confirmed the claim.
func TestKafkaAbandonedClaim(t *testing.T) {
	b := newBroker(t)
	cfg := kafkaConfig(t, b)
	cfg.Lease = 300 * time.Millisecond
	app := startApp(t, cfg)
	id := openActivity(t, app, 1, 1)
	ctx := context.Background()

	c := activity.Claim{ActivityID: id, UserID: "dead", ClaimID: "ZGVhZC1jbGFpbS0x"}
	if err := app.Store.Claim(ctx, &c); err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, 32)
	forger, _ := activity.NewSigner(secret)
	late := activity.Participation{Token: forger.Sign(id, c.Slot, [12]byte{1}), ActivityID: id, Slot: c.Slot,
		UserID: "dead", ClaimID: c.ClaimID, IssuedAt: time.Now().UTC()}
	if err := app.producer.Record(ctx, late); err != nil {
		t.Fatal(err)
	}
	// Not sold out: the slot may come back.
	if a := joinHTTP(app.URL(), id, "alive"); a.code != "slots_in_flight" {
		t.Fatalf("join while the dead claim holds the only slot: %d %s, want slots_in_flight", a.status, a.code)
	}
	// After the lease the job gives the slot back and it is sold again.
	var again joinAnswer
	eventually(t, 10*time.Second, "the abandoned slot is sold again", func() bool {
		again = joinHTTP(app.URL(), id, "alive")
		return again.status == http.StatusOK
	})
	if err := app.Store.Confirm(ctx, c, time.Now()); !errors.Is(err, activity.ErrLeaseLost) {
		t.Fatalf("late confirm of the reaped claim: %v, want ErrLeaseLost", err)
	}
	converged(t, app, id, 1, 1)
	var voided int
	if err := app.db.Get(&voided, "SELECT COUNT(*) FROM participations WHERE token = ? AND status = 'void'", late.Token); err != nil {
		t.Fatal(err)
	}
	if voided != 1 {
		t.Fatalf("the late event's record is not void")
	}
	checkTokens(t, app.URL(), map[string]joinAnswer{again.token: again})
}

func jsonDecode(r interface{ Read([]byte) (int, error) }, v any) error {
	return json.NewDecoder(r).Decode(v)
}

// TestReapWhileMySQLIsDown: a crashed instance's claims hold stock only for
// their lease, also while MySQL is down: the job gives them back from what
// Redis knows, and the slots are sold again before MySQL returns.
func TestReapWhileMySQLIsDown(t *testing.T) {
	b := newBroker(t)
	cfg := kafkaConfig(t, b)
	cfg.Lease = 300 * time.Millisecond
	proxy := mysqlViaProxy(t, &cfg)
	app := startApp(t, cfg)
	id := openActivity(t, app, 2, 1)
	ctx := context.Background()
	for _, u := range []string{"dead1", "dead2"} { // claims of an instance that died
		c := activity.Claim{ActivityID: id, UserID: u, ClaimID: "ZGVhZC1jbGFpbS0" + u[4:]}
		if err := app.Store.Claim(ctx, &c); err != nil {
			t.Fatal(err)
		}
	}
	proxy.Cut()
	eventually(t, 10*time.Second, "the dead claims are given back while MySQL is down", func() bool {
		c, ok, err := app.Store.Counters(ctx, id)
		return err == nil && ok && c.InFlight == 0 && c.Claimed == 0
	})
	got := tokens(t, crowd(app.URL(), id, users("u", 5), 5))
	if len(got) != 2 {
		t.Fatalf("%d tokens sold while MySQL was down, want the 2 given back", len(got))
	}
	proxy.Restore()
	converged(t, app, id, 2, 2)
}

// metricValue reads the value of an unlabelled metric from a Prometheus
// text exposition, or -1.
func metricValue(body, name string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f
			}
		}
	}
	return -1
}

// mysqlViaProxy sends the app's MySQL connections of cfg through a proxy
// the test can cut, and returns it.
func mysqlViaProxy(t *testing.T, cfg *Config) *testenv.Proxy {
	t.Helper()
	dsn, err := gomysql.ParseDSN(cfg.MySQLDSN)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, dsn.Addr)
	dsn.Addr = proxy.Addr()
	cfg.MySQLDSN = dsn.FormatDSN()
	return proxy
}
