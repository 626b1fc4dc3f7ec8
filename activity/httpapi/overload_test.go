package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"seckill/activity"
	"seckill/activity/httpapi"
	"seckill/internal/inflight"
)

// soldOutID is the activity busyService knows to be sold out.
const soldOutID = 2

// busyService is a fakeService whose joins wait until the test lets them
// go, so that a test can hold every place among the joins in flight; it
// knows activity soldOutID to be sold out, and answers tokens and the admin
// reads of any activity.
type busyService struct {
	*fakeService
	entered chan struct{} // a join has started
	release chan struct{} // closed: the joins may finish
	started atomic.Int64  // joins started
}

func newBusyService() *busyService {
	return &busyService{fakeService: &fakeService{}, entered: make(chan struct{}, 100), release: make(chan struct{})}
}

func (b *busyService) KnownAnswer(id int64, _ string) error {
	if id == soldOutID {
		return activity.ErrSoldOut
	}
	return nil
}

func (b *busyService) Join(ctx context.Context, id int64, user, key string) (*activity.Participation, error) {
	b.started.Add(1)
	b.entered <- struct{}{}
	<-b.release
	return b.fakeService.Join(ctx, id, user, key)
}

func (b *busyService) Token(_ context.Context, tok string) (*activity.Participation, error) {
	return &activity.Participation{Token: tok, ActivityID: 1, Slot: 1, UserID: "u", IssuedAt: time.Now()}, nil
}

func (b *busyService) Get(_ context.Context, id int64) (*activity.Activity, error) {
	return &activity.Activity{ID: id, State: activity.StateOpen}, nil
}

func (b *busyService) Stats(context.Context, *activity.Activity) (*activity.Stats, error) {
	return &activity.Stats{}, nil
}

func (b *busyService) Inspect(ctx context.Context, id int64) (*activity.Activity, *activity.Stats, error) {
	a, _ := b.Get(ctx, id)
	st, err := b.Stats(ctx, a)
	return a, st, err
}

// busyAPI is a Server over busy whose joins in flight lim bounds.
func busyAPI(t *testing.T, busy *busyService, lim *inflight.Limiter) (*api, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	return &api{h: httpapi.New(busy, httpapi.Config{AdminToken: adminToken, Registry: reg, JoinsInFlight: lim,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})}, reg
}

// joinAsync starts a join and returns where its reply comes.
func joinAsync(a *api, ctx context.Context, id, user string) <-chan reply {
	out := make(chan reply, 1)
	go func() {
		req := httptest.NewRequest("POST", "/api/v1/activities/"+id+"/join", strings.NewReader(`{"userId":"`+user+`"}`)).WithContext(ctx)
		rec := httptest.NewRecorder()
		a.h.ServeHTTP(rec, req)
		out <- reply{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	}()
	return out
}

// wantShed checks that r is the answer to a shed join.
func wantShed(t *testing.T, r reply) {
	t.Helper()
	var body struct {
		Error struct{ Code, Message string }
	}
	_ = json.Unmarshal(r.body, &body)
	if r.status != http.StatusServiceUnavailable || body.Error.Code != "unavailable" || !strings.Contains(body.Error.Message, "busy") {
		t.Fatalf("shed join answered %s, want 503 unavailable saying the service is busy", r)
	}
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Fatalf("shed join's Retry-After %q, want 1", got)
	}
}

func TestJoinsInFlight(t *testing.T) {
	busy := newBusyService()
	lim := inflight.New(inflight.Config{Max: 2})
	a, reg := busyAPI(t, busy, lim)
	held := []<-chan reply{joinAsync(a, context.Background(), "1", "u1"), joinAsync(a, context.Background(), "1", "u2")}
	<-busy.entered
	<-busy.entered

	t.Run("PastTheLimitShedAtOnce", func(t *testing.T) {
		wantShed(t, a.call(t, "POST", "/api/v1/activities/1/join", `{"userId":"u3"}`))
		if n := busy.started.Load(); n != 2 {
			t.Fatalf("the service saw %d joins, want the 2 admitted: a shed join must reach nothing", n)
		}
	})
	t.Run("NothingElseStarves", func(t *testing.T) {
		if r := a.call(t, "POST", "/api/v1/activities/2/join", `{"userId":"u4"}`); r.status != http.StatusConflict || !strings.Contains(string(r.body), "sold_out") {
			t.Fatalf("join of an activity known sold out, with every place taken: %s, want 409 sold_out", r)
		}
		for _, path := range []string{"/api/v1/tokens/some-token", "/healthz"} {
			if r := a.call(t, "GET", path, ""); r.status != http.StatusOK {
				t.Fatalf("GET %s with every place taken: %s", path, r)
			}
		}
		if r := a.admin(t, "GET", "/api/v1/admin/activities/1", ""); r.status != http.StatusOK {
			t.Fatalf("admin read with every place taken: %s", r)
		}
	})
	t.Run("Metrics", func(t *testing.T) {
		for name, want := range map[string]float64{
			`seckill_joins_shed_total{reason="limit"}`:         1,
			`seckill_joins_shed_total{reason="queue_timeout"}`: 0,
			`seckill_joins_total{outcome="shed"}`:              1,
			`seckill_joins_in_flight`:                          2,
			`seckill_join_limit`:                               2,
			`seckill_joins_queued`:                             0,
		} {
			if got := gathered(t, reg, name); got != want {
				t.Errorf("%s = %v, want %v", name, got, want)
			}
		}
	})

	close(busy.release)
	for _, r := range held {
		if got := <-r; got.status != http.StatusOK {
			t.Fatalf("admitted join: %s", got)
		}
	}
	t.Run("ReleasedOnCompletion", func(t *testing.T) {
		if n := lim.InFlight(); n != 0 {
			t.Fatalf("in flight after the joins answered: %d", n)
		}
		if r := a.call(t, "POST", "/api/v1/activities/1/join", `{"userId":"u5"}`); r.status != http.StatusOK {
			t.Fatalf("join once the places are back: %s", r)
		}
	})
}

// TestJoinPanicGivesThePlaceBack: a join that panics is answered 500 and
// gives its place back; the next join is not shed.
func TestJoinPanicGivesThePlaceBack(t *testing.T) {
	lim := inflight.New(inflight.Config{Max: 1})
	reg := prometheus.NewRegistry()
	a := &api{h: httpapi.New(&fakeService{joinPanic: "boom"}, httpapi.Config{AdminToken: adminToken, Registry: reg, JoinsInFlight: lim,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})}
	for i := range 3 {
		if r := a.call(t, "POST", "/api/v1/activities/1/join", `{"userId":"u1"}`); r.status != http.StatusInternalServerError {
			t.Fatalf("join %d of a panicking service: %s, want 500 (a 503 means the first kept its place)", i, r)
		}
	}
	if n := lim.InFlight(); n != 0 {
		t.Fatalf("in flight after the panics: %d, want 0", n)
	}
}

func TestJoinQueue(t *testing.T) {
	t.Run("QueueTimeout", func(t *testing.T) {
		busy := newBusyService()
		a, reg := busyAPI(t, busy, inflight.New(inflight.Config{Max: 1, QueueTimeout: time.Millisecond}))
		held := joinAsync(a, context.Background(), "1", "u1")
		<-busy.entered
		wantShed(t, a.call(t, "POST", "/api/v1/activities/1/join", `{"userId":"u2"}`))
		if got := gathered(t, reg, `seckill_joins_shed_total{reason="queue_timeout"}`); got != 1 {
			t.Fatalf("queue timeouts counted %v, want 1", got)
		}
		close(busy.release)
		<-held
	})
	t.Run("ClientGoneWhileWaiting", func(t *testing.T) {
		busy := newBusyService()
		lim := inflight.New(inflight.Config{Max: 1, QueueTimeout: time.Hour})
		a, reg := busyAPI(t, busy, lim)
		held := joinAsync(a, context.Background(), "1", "u1")
		<-busy.entered
		ctx, cancel := context.WithCancel(context.Background())
		waiting := joinAsync(a, ctx, "1", "u2")
		for lim.Waiting() != 1 {
			time.Sleep(100 * time.Microsecond)
		}
		cancel()
		wantShed(t, <-waiting)
		if got := gathered(t, reg, `seckill_joins_shed_total{reason="client_gone"}`); got != 1 {
			t.Fatalf("hang-ups counted %v, want 1", got)
		}
		if w, n := lim.Waiting(), lim.InFlight(); w != 0 || n != 1 {
			t.Fatalf("after the hang-up: %d waiting, %d in flight; want 0 and 1", w, n)
		}
		close(busy.release)
		<-held
		if n := busy.started.Load(); n != 1 {
			t.Fatalf("the service saw %d joins, want 1: the join whose client left must reach nothing", n)
		}
	})
}

// gathered is the value of one series of reg, named as in the text format
// (name{label="value"}); -1 when there is none.
func gathered(t *testing.T, reg *prometheus.Registry, series string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, l := range m.GetLabel() {
				name += `{` + l.GetName() + `="` + l.GetValue() + `"}`
			}
			if name != series {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return -1
}
