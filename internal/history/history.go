// Package history records what the clients of seckill saw — every join and
// every token check, when it was sent, when it was answered and what the
// answer was — and checks the record with porcupine against a sequential
// model of the service's promises (see model.go). Tests make the calls; the
// package only writes them down and judges them.
package history

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// JoinOutcome is what a join's answer tells about its effect.
type JoinOutcome int

const (
	// JoinUnknown: a 5xx other than slots_in_flight, a timeout or a broken
	// connection. The join may have taken a token (an event acknowledged
	// too late, a slot left in doubt by a rebuild, a confirm whose answer
	// died with the process), at any moment after it was sent, or nothing.
	JoinUnknown JoinOutcome = iota
	// JoinToken: 200, a token.
	JoinToken
	// JoinSoldOut: 409 sold_out, every slot issued.
	JoinSoldOut
	// JoinLimitReached: 409 limit_reached, the user holds the limit.
	JoinLimitReached
	// JoinInFlight: 503 slots_in_flight. Nothing was taken, and not every
	// slot was issued (some were only held by joins in flight).
	JoinInFlight
	// JoinRefused: any other answer (400, 404, 409 not_open, 429), or a
	// connection refused before the request was sent: nothing taken.
	JoinRefused
)

var joinOutcomeNames = [...]string{"unknown", "token", "sold_out", "limit_reached", "slots_in_flight", "refused"}

// String names the outcome as the API's error codes do.
func (o JoinOutcome) String() string { return joinOutcomeNames[o] }

// JoinOutcomeOf reads a join's HTTP answer; status 0 means the request
// failed without an answer.
func JoinOutcomeOf(status int, code string) JoinOutcome {
	switch {
	case status == http.StatusOK:
		return JoinToken
	case status == http.StatusConflict && code == "sold_out":
		return JoinSoldOut
	case status == http.StatusConflict && code == "limit_reached":
		return JoinLimitReached
	case status == http.StatusServiceUnavailable && code == "slots_in_flight":
		return JoinInFlight
	case status == 0 || status >= 500:
		return JoinUnknown
	default:
		return JoinRefused
	}
}

// CheckOutcome is what a token check answered.
type CheckOutcome int

const (
	// CheckUnknown: a 503 (the state is being rebuilt), another answer
	// that says nothing of the token, or no answer.
	CheckUnknown CheckOutcome = iota
	// CheckValid: 200.
	CheckValid
	// CheckNotFound: 404.
	CheckNotFound
)

var checkOutcomeNames = [...]string{"unknown", "200", "404"}

// String is the status the outcome stands for.
func (o CheckOutcome) String() string { return checkOutcomeNames[o] }

// CheckOutcomeOf reads a token check's HTTP status; 0 means no answer.
func CheckOutcomeOf(status int) CheckOutcome {
	switch status {
	case http.StatusOK:
		return CheckValid
	case http.StatusNotFound:
		return CheckNotFound
	default:
		return CheckUnknown
	}
}

// Activity is what the model needs to know of an activity. Its history
// must start when it opens.
type Activity struct {
	ID           int64
	Stock        int
	PerUserLimit int
}

// Join is one join (without an Idempotency-Key) as its client saw it.
// Times are nanoseconds from any fixed origin; the Return of a join whose
// outcome is JoinUnknown is not used: it may take effect at any later time.
type Join struct {
	Activity     int64
	User         string
	Call, Return int64
	Outcome      JoinOutcome
	Token        string // of a JoinToken
	Status       int    // the HTTP status, for the visualization only
}

// TokenCheck is one GET /api/v1/tokens/{token} as its client saw it.
type TokenCheck struct {
	Token        string
	Call, Return int64
	Outcome      CheckOutcome
}

// History is a record of joins and token checks on some activities.
type History struct {
	Activities []Activity
	Joins      []Join
	Checks     []TokenCheck
}

// Recorder writes down a History as the calls happen; it is safe for
// concurrent use. A call that is begun but never ended (the test gave up
// on it) counts as unknown.
type Recorder struct {
	mu         sync.Mutex
	start      time.Time
	activities []Activity
	joins      []Join
	joinDone   []bool
	checks     []TokenCheck
	checkDone  []bool
	issued     []string
}

// NewRecorder starts an empty record; its clock starts now.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

func (r *Recorder) now() int64 { return int64(time.Since(r.start)) }

// Activity tells the recorder the stock and per-user limit of an activity,
// before its first join.
func (r *Recorder) Activity(id int64, stock, perUserLimit int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.activities = append(r.activities, Activity{ID: id, Stock: stock, PerUserLimit: perUserLimit})
}

// Join records that a join is sent now; call the function it returns with
// the answer as soon as it comes.
func (r *Recorder) Join(activity int64, user string) func(status int, outcome JoinOutcome, token string) {
	r.mu.Lock()
	i := len(r.joins)
	r.joins = append(r.joins, Join{Activity: activity, User: user, Call: r.now()})
	r.joinDone = append(r.joinDone, false)
	r.mu.Unlock()
	return func(status int, outcome JoinOutcome, token string) {
		at := r.now()
		r.mu.Lock()
		defer r.mu.Unlock()
		j := &r.joins[i]
		j.Return, j.Outcome, j.Token, j.Status = at, outcome, token, status
		r.joinDone[i] = true
		if outcome == JoinToken {
			r.issued = append(r.issued, token)
		}
	}
}

// CheckToken records that a token check is sent now; call the function it
// returns with the answer as soon as it comes.
func (r *Recorder) CheckToken(token string) func(CheckOutcome) {
	r.mu.Lock()
	i := len(r.checks)
	r.checks = append(r.checks, TokenCheck{Token: token, Call: r.now()})
	r.checkDone = append(r.checkDone, false)
	r.mu.Unlock()
	return func(outcome CheckOutcome) {
		at := r.now()
		r.mu.Lock()
		defer r.mu.Unlock()
		r.checks[i].Return, r.checks[i].Outcome = at, outcome
		r.checkDone[i] = true
	}
}

// SampleToken returns a token some join was answered, picked at random,
// or false when none was yet.
func (r *Recorder) SampleToken(rng *rand.Rand) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.issued) == 0 {
		return "", false
	}
	return r.issued[rng.IntN(len(r.issued))], true
}

// History returns what was recorded so far; calls not answered yet are
// unknown.
func (r *Recorder) History() History {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := History{
		Activities: append([]Activity(nil), r.activities...),
		Joins:      append([]Join(nil), r.joins...),
		Checks:     append([]TokenCheck(nil), r.checks...),
	}
	end := r.now()
	for i, done := range r.joinDone {
		if !done {
			h.Joins[i].Return, h.Joins[i].Outcome = end, JoinUnknown
		}
	}
	for i, done := range r.checkDone {
		if !done {
			h.Checks[i].Return, h.Checks[i].Outcome = end, CheckUnknown
		}
	}
	return h
}
