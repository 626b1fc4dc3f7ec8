package history_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"seckill/internal/history"
)

const (
	unknown  = history.JoinUnknown
	token    = history.JoinToken
	soldOut  = history.JoinSoldOut
	limit    = history.JoinLimitReached
	inFlight = history.JoinInFlight
	refused  = history.JoinRefused
)

// j is a join on activity 1; a token outcome is answered the token "t-"+user.
func j(user string, call, ret int64, o history.JoinOutcome) history.Join {
	jn := history.Join{Activity: 1, User: user, Call: call, Return: ret, Outcome: o}
	if o == token {
		jn.Token = "t-" + user
	}
	return jn
}

// c is a check of tok answered o.
func c(tok string, call, ret int64, o history.CheckOutcome) history.TokenCheck {
	return history.TokenCheck{Token: tok, Call: call, Return: ret, Outcome: o}
}

func act(stock, perUser int) []history.Activity {
	return []history.Activity{{ID: 1, Stock: stock, PerUserLimit: perUser}}
}

func check(t *testing.T, h history.History) history.Result {
	t.Helper()
	res, err := history.Check(h, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestCheckRejects(t *testing.T) {
	for _, tc := range []struct {
		name    string
		h       history.History
		illegal string // the partition found illegal
	}{
		{"ValidThen404ThenValid", history.History{Activities: act(10, 1),
			Joins: []history.Join{j("u1", 0, 10, token)},
			Checks: []history.TokenCheck{c("t-u1", 20, 30, history.CheckValid), c("t-u1", 40, 50, history.CheckNotFound),
				c("t-u1", 60, 70, history.CheckValid)}}, "token t-u1"},
		{"NotFoundRightAfterTheJoin", history.History{Activities: act(10, 1),
			Joins:  []history.Join{j("u1", 0, 10, token)},
			Checks: []history.TokenCheck{c("t-u1", 11, 12, history.CheckNotFound)}}, "token t-u1"},
		{"NeverIssuedValid", history.History{Activities: act(10, 1),
			Joins:  []history.Join{j("u1", 0, 10, token)},
			Checks: []history.TokenCheck{c("forged", 20, 30, history.CheckValid)}}, "token forged"},
		// The unknown join explains the sold_out; after it nothing can
		// give a slot back.
		{"SoldOutThenToken", history.History{Activities: act(2, 1),
			Joins: []history.Join{j("u1", 0, 10, token), j("u2", 5, 15, unknown), j("u3", 20, 30, soldOut),
				j("u4", 40, 50, token)}}, "activity 1"},
		{"SoldOutWithASlotLeft", history.History{Activities: act(2, 1),
			Joins: []history.Join{j("u1", 0, 10, token), j("u2", 20, 30, soldOut)}}, "activity 1"},
		{"InFlightAfterSoldOut", history.History{Activities: act(1, 1),
			Joins: []history.Join{j("u1", 0, 10, token), j("u2", 20, 30, soldOut), j("u3", 40, 50, inFlight)}}, "activity 1"},
		{"MoreTokensThanStock", history.History{Activities: act(3, 1),
			Joins: []history.Join{j("u1", 0, 100, token), j("u2", 0, 100, token), j("u3", 0, 100, token),
				j("u4", 0, 100, token)}}, "activity 1"},
		{"MoreTokensThanStockWithUnknowns", history.History{Activities: act(2, 1),
			Joins: []history.Join{j("u0", 0, 1, unknown), j("u1", 0, 100, token), j("u2", 50, 150, token),
				j("u5", 60, 70, unknown), j("u3", 120, 200, token)}}, "activity 1"},
		{"UserOverTheLimit", history.History{Activities: act(10, 1),
			Joins: []history.Join{j("u1", 0, 10, token), {Activity: 1, User: "u1", Call: 20, Return: 30, Outcome: token,
				Token: "second"}}}, "activity 1"},
		{"UserOverTheLimitConcurrently", history.History{Activities: act(10, 2),
			Joins: []history.Join{{Activity: 1, User: "u1", Call: 0, Return: 50, Outcome: token, Token: "a"},
				{Activity: 1, User: "u1", Call: 10, Return: 60, Outcome: token, Token: "b"},
				{Activity: 1, User: "u1", Call: 20, Return: 70, Outcome: token, Token: "c"}}}, "activity 1"},
		{"LimitReachedHoldingNothing", history.History{Activities: act(10, 1),
			Joins: []history.Join{j("u1", 0, 10, limit)}}, "activity 1"},
		{"LimitReachedAfterARefusal", history.History{Activities: act(10, 1),
			Joins: []history.Join{j("u1", 0, 10, refused), j("u1", 20, 30, limit)}}, "activity 1"},
		{"TokenHandedOutTwice", history.History{Activities: act(10, 1),
			Joins: []history.Join{{Activity: 1, User: "u1", Call: 0, Return: 10, Outcome: token, Token: "same"},
				{Activity: 1, User: "u2", Call: 20, Return: 30, Outcome: token, Token: "same"}}}, "token same"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := check(t, tc.h)
			if res.Outcome != porcupine.Illegal {
				t.Fatalf("%v, want Illegal", res)
			}
			if !slices.Equal(res.Illegal, []string{tc.illegal}) {
				t.Errorf("illegal partitions %q, want %q", res.Illegal, tc.illegal)
			}
		})
	}
}

func TestCheckAccepts(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    history.History
	}{
		{"ConcurrentSellOut", history.History{Activities: act(2, 1),
			Joins: []history.Join{j("u1", 0, 100, token), j("u2", 0, 100, token), j("u3", 50, 60, soldOut),
				j("u4", 110, 120, soldOut)}}},
		{"UnknownTookTheLastSlot", history.History{Activities: act(2, 1),
			Joins: []history.Join{j("u1", 0, 10, token), j("u2", 10, 20, unknown), j("u3", 30, 40, soldOut)}}},
		{"UnknownTookNothing", history.History{Activities: act(2, 1),
			Joins: []history.Join{j("u1", 0, 10, unknown), j("u2", 20, 30, token), j("u3", 40, 50, token),
				j("u4", 60, 70, soldOut)}}},
		// A 503 whose slot a rebuild kept takes effect after its answer.
		{"UnknownTakesEffectLater", history.History{Activities: act(1, 1),
			Joins: []history.Join{j("u1", 0, 10, unknown), j("u2", 20, 30, inFlight), j("u3", 40, 50, soldOut)}}},
		{"RetryAfterAnUnknown", history.History{Activities: act(5, 1),
			Joins: []history.Join{j("u1", 0, 10, unknown), j("u1", 20, 30, limit), j("u2", 0, 10, unknown),
				j("u2", 20, 30, token), j("u3", 0, 10, inFlight), j("u3", 20, 30, token)}}},
		{"RefusedTakesNothing", history.History{Activities: act(1, 1),
			Joins: []history.Join{j("u1", 0, 10, refused), j("u2", 20, 30, token), j("u3", 40, 50, soldOut)}}},
		{"ChecksWithUnknowns", history.History{Activities: act(10, 1),
			Joins: []history.Join{j("u1", 0, 10, token)},
			Checks: []history.TokenCheck{c("t-u1", 20, 30, history.CheckValid), c("t-u1", 40, 50, history.CheckUnknown),
				c("t-u1", 60, 70, history.CheckValid), c("forged", 20, 30, history.CheckNotFound),
				c("forged", 40, 50, history.CheckUnknown)}}},
		{"Empty", history.History{Activities: act(1, 1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if res := check(t, tc.h); !res.OK() {
				t.Fatalf("%v %q, want Ok", res, res.Illegal)
			}
		})
	}
}

func TestCheckUndescribedActivity(t *testing.T) {
	if _, err := history.Check(history.History{Joins: []history.Join{j("u1", 0, 1, token)}}, 0); err == nil {
		t.Fatal("a join on an activity the history does not describe was checked")
	}
}

// simulate makes the history of a linearizable service: joins of a crowd
// (a tenth by users coming back) arrive about 5,000 a second, each takes
// effect at a random moment of its call, one in 20 answers 503 and takes a
// token or not, possibly after its answer, and some of the last slots are
// answered slots_in_flight; a third of the tokens are checked after their
// answer, and a few forged ones.
func simulate(rng *rand.Rand, stock, perUser, joins int) history.History {
	type op struct {
		j       history.Join
		at      int64 // when it takes effect
		unknown bool
	}
	ops := make([]op, joins)
	now := int64(0)
	for i := range ops {
		now += rng.Int64N(400_000) // about 5,000 joins a second
		user := fmt.Sprintf("u%d", i)
		if i > 0 && rng.IntN(10) == 0 {
			user = ops[rng.IntN(i)].j.User
		}
		d := 1_000_000 + rng.Int64N(50_000_000) // 1 to 51 ms
		ops[i] = op{j: history.Join{Activity: 1, User: user, Call: now, Return: now + d}, at: now + rng.Int64N(d)}
		if rng.IntN(20) == 0 {
			ops[i].unknown = true
			ops[i].at = now + rng.Int64N(3*d)
		}
	}
	byEffect := make([]int, joins)
	for i := range byEffect {
		byEffect[i] = i
	}
	slices.SortFunc(byEffect, func(a, b int) int { return int(ops[a].at - ops[b].at) })
	taken, held := 0, map[string]int{}
	for _, i := range byEffect {
		o := &ops[i]
		switch {
		case o.unknown:
			o.j.Outcome = unknown
			if taken < stock && held[o.j.User] < perUser && rng.IntN(2) == 0 {
				taken++
				held[o.j.User]++
			}
		case held[o.j.User] >= perUser:
			o.j.Outcome = limit
		case taken == stock:
			o.j.Outcome = soldOut
		case taken > stock-50 && rng.IntN(4) == 0:
			o.j.Outcome = inFlight // the last slots are held by joins in flight
		default:
			taken++
			held[o.j.User]++
			o.j.Outcome, o.j.Token = token, fmt.Sprintf("tok%d", i)
		}
	}
	h := history.History{Activities: act(stock, perUser)}
	for _, o := range ops {
		h.Joins = append(h.Joins, o.j)
		if o.j.Outcome == token && rng.IntN(3) == 0 {
			call := o.j.Return + rng.Int64N(100_000_000)
			h.Checks = append(h.Checks, c(o.j.Token, call, call+1_000_000, history.CheckValid))
		}
		if rng.IntN(50) == 0 {
			h.Checks = append(h.Checks, c(fmt.Sprintf("forged%d", len(h.Checks)), o.j.Call, o.j.Return, history.CheckNotFound))
		}
	}
	return h
}

// TestCheckSimulatedStorm checks a history of the size of the fault storms
// (5,000 joins, over a hundred at a time), then the same with one answer
// changed: each must be found out.
func TestCheckSimulatedStorm(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	h := simulate(rng, 1000, 2, 5000)
	res := check(t, h)
	t.Logf("%v", res)
	if !res.OK() {
		t.Fatalf("simulated history: %v %q", res, res.Illegal)
	}
	for _, tc := range []struct {
		name   string
		change func(h *history.History)
	}{
		{"ATokenAfterSoldOut", func(h *history.History) {
			i := lastIndex(h.Joins, soldOut)
			h.Joins[i].Outcome, h.Joins[i].Token = token, "extra"
		}},
		{"SlotsInFlightAfterSoldOut", func(h *history.History) {
			h.Joins[lastIndex(h.Joins, soldOut)].Outcome = inFlight
		}},
		{"AUserOverTheLimit", func(h *history.History) {
			i := lastIndex(h.Joins, limit)
			h.Joins[i].Outcome, h.Joins[i].Token = token, "extra"
		}},
		{"ACheckAnswered404", func(h *history.History) {
			i := slices.IndexFunc(h.Checks, func(c history.TokenCheck) bool { return c.Outcome == history.CheckValid })
			h.Checks[i].Outcome = history.CheckNotFound
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := history.History{Activities: h.Activities, Joins: slices.Clone(h.Joins), Checks: slices.Clone(h.Checks)}
			tc.change(&bad)
			if res := check(t, bad); res.Outcome != porcupine.Illegal {
				t.Errorf("%v, want Illegal", res)
			} else {
				t.Logf("%v in %q", res, res.Illegal)
			}
		})
	}
}

// lastIndex is the index of the last join answered o.
func lastIndex(joins []history.Join, o history.JoinOutcome) int {
	for i := len(joins) - 1; i >= 0; i-- {
		if joins[i].Outcome == o {
			return i
		}
	}
	panic("no such answer")
}

func BenchmarkCheckSimulatedStorm(b *testing.B) {
	h := simulate(rand.New(rand.NewPCG(1, 2)), 1000, 2, 5000)
	for b.Loop() {
		if res, err := history.Check(h, 0); err != nil || !res.OK() {
			b.Fatalf("%v %v", res, err)
		}
	}
}

// fakeService is a sequential service behind a lock: every history
// recorded against it is linearizable.
type fakeService struct {
	mu           sync.Mutex
	stock, taken int
	held         map[string]int
	tokens       map[string]bool
}

func (s *fakeService) join(user string) (int, string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.held[user] >= 1:
		return http.StatusConflict, "limit_reached", ""
	case s.taken == s.stock:
		return http.StatusConflict, "sold_out", ""
	}
	s.taken++
	s.held[user]++
	tok := fmt.Sprintf("tok%d", s.taken)
	s.tokens[tok] = true
	return http.StatusOK, "", tok
}

func (s *fakeService) check(tok string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tokens[tok] {
		return http.StatusOK
	}
	return http.StatusNotFound
}

func TestRecorder(t *testing.T) {
	svc := &fakeService{stock: 50, held: map[string]int{}, tokens: map[string]bool{}}
	rec := history.NewRecorder()
	rec.Activity(1, svc.stock, 1)
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			user := fmt.Sprintf("u%d", i%150)
			done := rec.Join(1, user)
			status, code, tok := svc.join(user)
			done(status, history.JoinOutcomeOf(status, code), tok)
			rng := rand.New(rand.NewPCG(uint64(i), 0))
			if tok, ok := rec.SampleToken(rng); ok {
				done := rec.CheckToken(tok)
				done(history.CheckOutcomeOf(svc.check(tok)))
			}
		})
	}
	wg.Wait()
	// A join sent and never answered: unknown.
	rec.Join(1, "gave-up")
	h := rec.History()
	if n := len(h.Joins); n != 201 {
		t.Fatalf("%d joins recorded, want 201", n)
	}
	if last := h.Joins[200]; last.Outcome != unknown {
		t.Errorf("a join never answered is recorded %v, want unknown", last.Outcome)
	}
	res := check(t, h)
	if !res.OK() || res.UnknownJoins != 1 || res.Checks == 0 {
		t.Fatalf("%v %q, want Ok with one unknown join and some checks", res, res.Illegal)
	}

	// The same record with a token check answered 404.
	done := rec.CheckToken("tok1")
	done(history.CheckNotFound)
	res = check(t, rec.History())
	if res.Outcome != porcupine.Illegal || !slices.Equal(res.Illegal, []string{"token tok1"}) {
		t.Fatalf("%v %q, want Illegal in token tok1", res, res.Illegal)
	}
	path := filepath.Join(t.TempDir(), "history.html")
	if err := res.Visualize(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "check(tok1) → 404") {
		t.Errorf("the visualization does not show the 404 check")
	}
}

func TestJoinOutcomeOf(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string
		want   history.JoinOutcome
	}{
		{200, "", token},
		{409, "sold_out", soldOut},
		{409, "limit_reached", limit},
		{503, "slots_in_flight", inFlight},
		{503, "unavailable", unknown},
		{500, "internal", unknown},
		{0, "", unknown},
		{409, "not_open", refused},
		{429, "rate_limited", refused},
		{400, "invalid_request", refused},
	} {
		if got := history.JoinOutcomeOf(tc.status, tc.code); got != tc.want {
			t.Errorf("JoinOutcomeOf(%d, %q) = %v, want %v", tc.status, tc.code, got, tc.want)
		}
	}
	for status, want := range map[int]history.CheckOutcome{200: history.CheckValid, 404: history.CheckNotFound,
		503: history.CheckUnknown, 0: history.CheckUnknown} {
		if got := history.CheckOutcomeOf(status); got != want {
			t.Errorf("CheckOutcomeOf(%d) = %v, want %v", status, got, want)
		}
	}
}

// TestCheckAgreesWithTheWideCheck compares Check with porcupine on the
// operations as recorded, on small random histories: the narrowing must
// not change a verdict.
func TestCheckAgreesWithTheWideCheck(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	outcomes := []history.JoinOutcome{unknown, token, token, token, soldOut, limit, inFlight, refused}
	verdicts := map[bool]int{}
	for n := range 9000 {
		var h history.History
		switch n % 3 {
		case 0:
			// A small run of the simulated service: linearizable.
			h = simulate(rng, 1+rng.IntN(4), 1+rng.IntN(2), 2+rng.IntN(10))
		case 1:
			// The same with one answer changed: often not.
			h = simulate(rng, 1+rng.IntN(4), 1+rng.IntN(2), 2+rng.IntN(10))
			i := rng.IntN(len(h.Joins))
			h.Joins[i].Outcome = outcomes[rng.IntN(len(outcomes))]
			h.Joins[i].Token = fmt.Sprintf("changed%d", i)
		default:
			// Anything at all, on few users and small times: mostly not.
			h = history.History{Activities: act(1+rng.IntN(3), 1+rng.IntN(2))}
			for i := range 2 + rng.IntN(8) {
				call := rng.Int64N(20)
				jn := j(fmt.Sprintf("u%d", rng.IntN(4)), call, call+rng.Int64N(10), outcomes[rng.IntN(len(outcomes))])
				if jn.Outcome == token {
					jn.Token = fmt.Sprintf("t%d", i)
				}
				h.Joins = append(h.Joins, jn)
			}
		}
		res := check(t, h)
		wide := history.CheckWide(h)
		if res.OK() != wide {
			t.Fatalf("history %d: Check says %v, the wide check %v:\n%+v", n, res.Outcome, wide, h)
		}
		verdicts[wide]++
	}
	t.Logf("%d linearizable, %d not", verdicts[true], verdicts[false])
	if verdicts[true] < 2000 || verdicts[false] < 2000 {
		t.Errorf("too few of one kind: %v", verdicts)
	}
}
