package activity_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"seckill/activity"
	"seckill/activity/mysql"
	"seckill/internal/testenv"
	"seckill/stock"
)

// lateRecorder records to MySQL, except the first participation of one
// user: that join is told the record failed (an acknowledgement that came
// too late), while the event itself is kept to arrive later.
type lateRecorder struct {
	repo *mysql.Repository
	user string
	mu   sync.Mutex
	late []activity.Participation
}

func (r *lateRecorder) Record(ctx context.Context, p activity.Participation) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.UserID == r.user && r.late == nil {
		r.late = append(r.late, p)
		return errors.New("kafka: acknowledgement timed out")
	}
	return r.repo.Record(ctx, p)
}

// TestRebuildAfterAGivenBackClaim: stock 3, limit 1. ghost's first event
// is acknowledged late, so its join answers 503 and gives slot 1 back;
// ghost retries and gets slot 1; alice and bob join. Redis then loses the
// activity before ghost's first event reaches MySQL. The rebuild must not
// count the given-back claim: 3 valid records, one on each slot, ghost
// holding one, and every token answered 200 valid.
func TestRebuildAfterAGivenBackClaim(t *testing.T) {
	ctx := context.Background()
	var rec *lateRecorder
	env := testenv.New(t, testenv.Options{Recorder: func(r *mysql.Repository) activity.Recorder {
		rec = &lateRecorder{repo: r, user: "ghost"}
		return rec
	}})
	a := env.OpenActivity(t, 3, 1)
	if _, err := env.Svc.Join(ctx, a.ID, "ghost", ""); !errors.Is(err, activity.ErrUnavailable) {
		t.Fatalf("ghost's first join: %v, want unavailable", err)
	}
	var answered []*activity.Participation
	for _, u := range []string{"ghost", "alice", "bob"} {
		p, err := env.Svc.Join(ctx, a.ID, u, "")
		if err != nil {
			t.Fatalf("join of %s: %v", u, err)
		}
		answered = append(answered, p)
	}
	if answered[0].Slot != rec.late[0].Slot {
		t.Fatalf("ghost's retry got slot %d, want the given-back slot %d", answered[0].Slot, rec.late[0].Slot)
	}

	testenv.DeletePrefix(env.Redis, env.Prefix) // Redis loses the activity
	if err := env.Repo.Record(ctx, rec.late[0]); err != nil {
		t.Fatal(err) // the late event reaches MySQL before the rebuild
	}
	if rep := env.Reconcile(t); rep.Rebuilt != 1 {
		t.Fatalf("rebuilt %d activities, want 1", rep.Rebuilt)
	}

	if n, err := env.Repo.CountRecorded(ctx, a.ID); err != nil || n != 3 {
		t.Fatalf("%d valid records (%v), want 3", n, err)
	}
	if p, err := env.Repo.Participation(ctx, rec.late[0].Token); err != nil || p.Status != activity.RecordVoid {
		t.Fatalf("ghost's given-back record: %+v %v, want void", p, err)
	}
	for _, p := range answered {
		if _, err := env.Svc.Token(ctx, p.Token); err != nil {
			t.Errorf("token of %s answered 200: %v after the rebuild", p.UserID, err)
		}
	}
	var le *activity.LimitError
	if _, err := env.Svc.Join(ctx, a.ID, "ghost", ""); !errors.As(err, &le) || len(le.Held) != 1 {
		t.Fatalf("ghost joining again: %v, want limit reached with one token", err)
	}
	if _, err := env.Svc.Join(ctx, a.ID, "carol", ""); !errors.Is(err, activity.ErrSoldOut) {
		t.Fatalf("carol after the rebuild: %v, want sold out", err)
	}
}

// gatedSlots holds a slot store call until the test lets it go.
type gatedSlots struct {
	*stock.Store
	rebuild, preheat *gate
	// elsewhere, when set, preheats: another instance's store on the same
	// Redis.
	elsewhere *stock.Store
}

type gate struct {
	entered, release chan struct{}
	once             sync.Once
}

func newGate() *gate { return &gate{entered: make(chan struct{}), release: make(chan struct{})} }

func (g *gate) pass() {
	if g == nil {
		return
	}
	g.once.Do(func() { close(g.entered) })
	<-g.release
}

func (s *gatedSlots) Rebuild(ctx context.Context, a *activity.Activity, next func(context.Context) ([]activity.Participation, error), held *activity.Lock) error {
	s.rebuild.pass()
	return s.Store.Rebuild(ctx, a, next, held)
}

func (s *gatedSlots) Preheat(ctx context.Context, a *activity.Activity) error {
	s.preheat.pass()
	if s.elsewhere != nil {
		return s.elsewhere.Preheat(ctx, a)
	}
	return s.Store.Preheat(ctx, a)
}

// Learn is the open's on the other instance too, when it opens there.
func (s *gatedSlots) Learn(a *activity.Activity) {
	if s.elsewhere != nil && a.State == activity.StateApproved {
		s.elsewhere.Learn(a)
		return
	}
	s.Store.Learn(a)
}

// gatedLog is an event log whose catch-up waits for the test.
type gatedLog struct{ g *gate }

func (l gatedLog) WaitCaughtUp(context.Context, int64) error {
	l.g.pass()
	return nil
}

// TestCloseDuringARebuild: a close while a rebuild writes the state waits
// for it, so the rebuilt state cannot open what the close closed.
func TestCloseDuringARebuild(t *testing.T) {
	ctx := context.Background()
	g := newGate()
	env := testenv.New(t, testenv.Options{Slots: func(s *stock.Store) activity.SlotStore {
		return &gatedSlots{Store: s, rebuild: g}
	}})
	a := env.OpenActivity(t, 5, 1)
	if _, err := env.Svc.Join(ctx, a.ID, "u1", ""); err != nil {
		t.Fatal(err)
	}
	env.Reconcile(t)
	testenv.DeletePrefix(env.Redis, env.Prefix)

	cycle := make(chan error, 1)
	go func() { _, err := env.Job.Cycle(ctx); cycle <- err }()
	<-g.entered // the rebuild has read the activity as open
	closed := make(chan error, 1)
	go func() { _, err := env.Svc.Transition(ctx, a.ID, activity.ActionClose); closed <- err }()
	time.Sleep(200 * time.Millisecond) // the close runs into the rebuild
	close(g.release)
	if err := <-cycle; err != nil {
		t.Fatalf("cycle: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := env.Svc.Join(ctx, a.ID, "u2", ""); !errors.Is(err, activity.ErrNotOpen) {
		t.Fatalf("join after the close: %v, want not open", err)
	}
	if got, _ := env.Repo.Activity(ctx, a.ID); got.State != activity.StateClosed {
		t.Fatalf("state %s, want closed", got.State)
	}
}

// TestOpenDuringARebuildWait: the job finds an activity open in MySQL
// before its open has preheated Redis, and starts a rebuild; the preheat
// lands and a join is answered while the rebuild waits for the event log.
// The rebuild must find the live state and leave it alone: also the shards
// of a sharded activity that another instance than the job's opened (it
// never read their route key before, and must not take the activity for
// one of one shard, lost, and fence it).
func TestOpenDuringARebuildWait(t *testing.T) {
	for _, tc := range []struct {
		name      string
		shards    int
		elsewhere bool
	}{{"OneShard", 1, false}, {"ThreeShardsOpenedElsewhere", 3, true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			pre, wait := newGate(), newGate()
			gated := &gatedSlots{preheat: pre}
			env := testenv.New(t, testenv.Options{Slots: func(s *stock.Store) activity.SlotStore {
				gated.Store = s
				return gated
			}})
			if tc.elsewhere {
				gated.elsewhere = stock.New(env.Redis, stock.Options{Prefix: env.Prefix})
				t.Cleanup(gated.elsewhere.Stop)
			}
			env.Svc.UseEventLog(gatedLog{wait})
			begin, end := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
			name, stockN, limit, shards := "race", int64(5*tc.shards), int64(1), tc.shards
			a, err := env.Svc.Create(ctx, activity.Fields{Name: &name, Stock: &stockN, PerUserLimit: &limit, BeginAt: &begin, EndAt: &end, Shards: &shards})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionApprove); err != nil {
				t.Fatal(err)
			}
			opened := make(chan error, 1)
			go func() { _, err := env.Svc.Transition(ctx, a.ID, activity.ActionOpen); opened <- err }()
			<-pre.entered // open in MySQL, not yet in Redis
			cycle := make(chan error, 1)
			go func() { _, err := env.Job.Cycle(ctx); cycle <- err }()
			<-wait.entered // the rebuild waits for the event log
			close(pre.release)
			if err := <-opened; err != nil {
				t.Fatalf("open: %v", err)
			}
			// The join instance is the job's, unless the open was
			// elsewhere: a join would show the job's store the route key.
			join := func() *activity.Participation {
				p, err := env.Svc.Join(ctx, a.ID, "u1", "")
				if err != nil {
					t.Fatal(err)
				}
				return p
			}
			var p *activity.Participation
			if !tc.elsewhere {
				p = join()
			}
			close(wait.release)
			if err := <-cycle; err != nil {
				t.Fatalf("cycle: %v", err)
			}
			if tc.elsewhere {
				p = join()
			}
			env.Reconcile(t)
			if got, _ := env.Repo.Activity(ctx, a.ID); got.Epoch != 1 {
				t.Fatalf("epoch %d, want 1: a live state was rebuilt", got.Epoch)
			}
			if _, err := env.Svc.Token(ctx, p.Token); err != nil {
				t.Fatalf("token answered during the rebuild's wait: %v", err)
			}
			if c, ok, _ := env.Store.Counters(ctx, a.ID); !ok || c.Issued != 1 {
				t.Fatalf("counters %+v %v, want the one token", c, ok)
			}
		})
	}
}

// TestRebuildInPages: a rebuild that reads and replays the valid records 7
// at a time makes the same state as one that takes them all at once.
func TestRebuildInPages(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	a := env.OpenActivity(t, 60, 3)
	for i := range 50 {
		key := ""
		if i%4 == 0 {
			key = fmt.Sprintf("key-%d", i)
		}
		if _, err := env.Svc.Join(ctx, a.ID, fmt.Sprintf("u%d", i%20), key); err != nil {
			t.Fatalf("join %d: %v", i, err)
		}
	}
	env.Reconcile(t)
	state := func() map[string]string {
		t.Helper()
		out := testenv.Dump(t, env.Redis, env.Store.KeysOf(a.ID))
		delete(out, env.Store.KeysOf(a.ID).Meta+" epoch") // one more each rebuild
		return out
	}
	rebuildWith := func(page int) map[string]string {
		t.Helper()
		env.Svc.SetRebuildPage(page)
		testenv.DeletePrefix(env.Redis, env.Prefix)
		if rep := env.Reconcile(t); rep.Rebuilt != 1 {
			t.Fatalf("page %d: rebuilt %d activities, want 1", page, rep.Rebuilt)
		}
		return state()
	}
	paged, whole := rebuildWith(7), rebuildWith(10_000)
	if len(whole) < 20 || !maps.Equal(paged, whole) {
		t.Fatalf("rebuilt 7 at a time:\n%q\nall at once:\n%q", paged, whole)
	}
}

// TestRebuildRestoresTheSale: stock 10, limit 2. alice holds two tokens,
// bob one joined with an Idempotency-Key, carol one; dave's join is
// confirmed but its record still pending when Redis loses the activity.
// The job rebuilds the state from MySQL: the counters count the five
// tokens, each verifies, alice is at her limit, bob's retry gets his first
// answer, and the joins after the rebuild take the five free slots, never
// an issued one.
func TestRebuildRestoresTheSale(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	a := env.OpenActivity(t, 10, 2)
	var before []outcome
	join := func(user, key string) *activity.Participation {
		t.Helper()
		p, err := env.Svc.Join(ctx, a.ID, user, key)
		if err != nil {
			t.Fatalf("join of %s: %v", user, err)
		}
		before = append(before, outcome{user, p, nil})
		return p
	}
	join("alice", "")
	join("alice", "")
	bobs := join("bob", "bob-key")
	join("carol", "")
	env.Reconcile(t)
	daves := join("dave", "")

	testenv.DeletePrefix(env.Redis, env.Prefix) // Redis loses the activity
	if rep := env.Reconcile(t); rep.Rebuilt != 1 {
		t.Fatalf("rebuilt %d activities, want 1", rep.Rebuilt)
	}

	t.Run("Counters", func(t *testing.T) {
		c, ok, err := env.Store.Counters(ctx, a.ID)
		if err != nil || !ok || c != (activity.Counters{Claimed: 5, Issued: 5}) {
			t.Fatalf("counters %+v %v %v, want five claimed and issued, nothing in flight", c, ok, err)
		}
	})
	t.Run("TokensVerify", func(t *testing.T) {
		for _, o := range before {
			p, err := env.Svc.Token(ctx, o.p.Token)
			if err != nil || p.UserID != o.user || p.Slot != o.p.Slot {
				t.Errorf("token of %s on slot %d: %+v, %v", o.user, o.p.Slot, p, err)
			}
		}
		if p, err := env.Repo.Participation(ctx, daves.Token); err != nil || p.Status != activity.RecordValid {
			t.Errorf("dave's record, pending at the loss: %+v, %v; want valid", p, err)
		}
	})
	t.Run("PerUserCounts", func(t *testing.T) {
		var le *activity.LimitError
		if _, err := env.Svc.Join(ctx, a.ID, "alice", ""); !errors.As(err, &le) || len(le.Held) != 2 {
			t.Fatalf("alice joining a third time: %v, want limit reached listing her two tokens", err)
		}
		again, err := env.Svc.Join(ctx, a.ID, "bob", "bob-key")
		if err != nil || again.Token != bobs.Token {
			t.Fatalf("bob's retry: %+v, %v; want his first answer %s", again, err, bobs.Token)
		}
	})
	t.Run("NewClaimsAvoidIssuedSlots", func(t *testing.T) {
		after := storm(t, env.Svc, a.ID, []string{"bob", "carol", "dave", "erin", "frank", "grace", "heidi"})
		expectOnly(t, after, activity.ErrSoldOut)
		checkSale(t, env, a, append(before, after...), 10)
	})
}

// TestSecondLoss: Redis loses the activity and the job rebuilds it; erin
// joins, and Redis loses it again before her record is settled. The second
// rebuild must keep erin's token: a claim of the rebuilt state belongs to
// its new epoch, not to the lost one.
func TestSecondLoss(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	a := env.OpenActivity(t, 5, 1)
	if _, err := env.Svc.Join(ctx, a.ID, "alice", ""); err != nil {
		t.Fatal(err)
	}
	env.Reconcile(t)
	testenv.DeletePrefix(env.Redis, env.Prefix)
	if rep := env.Reconcile(t); rep.Rebuilt != 1 {
		t.Fatalf("first loss: rebuilt %d activities, want 1", rep.Rebuilt)
	}
	erins, err := env.Svc.Join(ctx, a.ID, "erin", "")
	if err != nil {
		t.Fatal(err)
	}
	testenv.DeletePrefix(env.Redis, env.Prefix)
	if rep := env.Reconcile(t); rep.Rebuilt != 1 {
		t.Fatalf("second loss: rebuilt %d activities, want 1", rep.Rebuilt)
	}
	if p, err := env.Svc.Token(ctx, erins.Token); err != nil || p.UserID != "erin" {
		t.Fatalf("erin's token after the second rebuild: %+v, %v", p, err)
	}
	if got, _ := env.Repo.Activity(ctx, a.ID); got.Epoch != 3 || got.Recorded != 2 {
		t.Fatalf("epoch %d with %d valid records, want epoch 3 and both tokens", got.Epoch, got.Recorded)
	}
}

// TestRebuildOfAClosedActivity: a closed activity, within its retention,
// whose Redis state is lost while bob's record is still pending, is rebuilt
// too: bob's token verifies and his record is settled valid, and the sale
// stays closed.
func TestRebuildOfAClosedActivity(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	a := env.OpenActivity(t, 5, 1)
	bobs, err := env.Svc.Join(ctx, a.ID, "bob", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionClose); err != nil {
		t.Fatal(err)
	}
	testenv.DeletePrefix(env.Redis, env.Prefix)
	if rep := env.Reconcile(t); rep.Rebuilt != 1 {
		t.Fatalf("rebuilt %d activities, want 1", rep.Rebuilt)
	}
	if p, err := env.Repo.Participation(ctx, bobs.Token); err != nil || p.Status != activity.RecordValid {
		t.Fatalf("bob's record: %+v, %v; want valid", p, err)
	}
	if _, err := env.Svc.Token(ctx, bobs.Token); err != nil {
		t.Fatalf("bob's token: %v", err)
	}
	if c, ok, err := env.Store.Counters(ctx, a.ID); err != nil || !ok || c.Issued != 1 {
		t.Fatalf("counters %+v %v %v, want bob's token issued", c, ok, err)
	}
	if _, err := env.Svc.Join(ctx, a.ID, "carol", ""); !errors.Is(err, activity.ErrNotOpen) {
		t.Fatalf("join after the rebuild: %v, want not open", err)
	}
}
