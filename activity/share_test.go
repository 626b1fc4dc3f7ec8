package activity_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"seckill/activity"
	"seckill/internal/testenv"
)

// countedSlots is the real slot store, counting by activity the counter
// reads of the job, one for each activity it works on in a cycle.
type countedSlots struct {
	activity.SlotStore
	mu    sync.Mutex
	reads map[int64]int
}

func (c *countedSlots) Counters(ctx context.Context, id int64) (activity.Counters, bool, error) {
	c.mu.Lock()
	c.reads[id]++
	c.mu.Unlock()
	return c.SlotStore.Counters(ctx, id)
}

// globalDown makes the lease of no one activity fail, as when the master
// of its key is down.
type globalDown struct{ *countedSlots }

func (g globalDown) Lease(ctx context.Context, scope int64, holder string, ttl time.Duration) (bool, error) {
	if scope == 0 {
		return false, errors.New("redis master of the job lease down")
	}
	return g.countedSlots.Lease(ctx, scope, holder, ttl)
}

func (c *countedSlots) take() map[int64]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.reads
	c.reads = map[int64]int{}
	return r
}

// countedRepo is the real repository, counting the job's queries for
// pending records, the one query of the settling not tied to an activity.
type countedRepo struct {
	activity.Repository
	mu      sync.Mutex
	pending int
}

func (c *countedRepo) PendingParticipations(ctx context.Context, limit int) ([]activity.Participation, error) {
	c.mu.Lock()
	c.pending++
	c.mu.Unlock()
	return c.Repository.PendingParticipations(ctx, limit)
}

func (c *countedRepo) take() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.pending
	c.pending = 0
	return n
}

// instance is one of several services on the same Redis and MySQL, as
// instances of the server are.
type instance struct {
	svc   *activity.Service
	slots *countedSlots
	repo  *countedRepo
}

func instances(t *testing.T, env *testenv.Env, n int, lease time.Duration) []*instance {
	out := make([]*instance, n)
	for i := range out {
		in := &instance{slots: &countedSlots{SlotStore: env.Store, reads: map[int64]int{}}, repo: &countedRepo{Repository: env.Repo}}
		in.svc = activity.NewService(in.repo, in.slots, env.Repo, env.Signer, testenv.Logger(t))
		in.svc.SetJobLease(fmt.Sprint("instance", i), lease)
		out[i] = in
	}
	return out
}

// TestJobWorkOfOneInstance: three instances running the job cycle after
// cycle on the same activities do, together, the work of one: in every
// round each activity is worked on by exactly one of them and the pending
// records are looked for once, the others reporting the activities as
// elsewhere. When the instance holding an activity stops, another takes
// its work over once the lease has run out and gives back a claim whose
// lease ran out meanwhile.
func TestJobWorkOfOneInstance(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{Lease: 100 * time.Millisecond})
	const lease = 300 * time.Millisecond
	var acts []*activity.Activity
	for range 4 {
		acts = append(acts, env.OpenActivity(t, 10, 1))
	}
	ins := instances(t, env, 3, lease)

	holder := map[int64]int{}
	for round := range 5 {
		elsewhere := 0
		reads := map[int64]int{}
		pending := 0
		// A different instance starts each round.
		for k := range ins {
			i := (round + k) % len(ins)
			rep, err := ins[i].svc.Reconcile(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Activities != len(acts) {
				t.Fatalf("round %d, instance %d: %d live activities, want %d", round, i, rep.Activities, len(acts))
			}
			elsewhere += rep.Elsewhere
			for id, n := range ins[i].slots.take() {
				reads[id] += n
				holder[id] = i
			}
			pending += ins[i].repo.take()
		}
		for _, a := range acts {
			if reads[a.ID] != 1 {
				t.Errorf("round %d: activity %d worked on %d times over three instances, want once", round, a.ID, reads[a.ID])
			}
		}
		if pending != 1 || elsewhere != 2*len(acts) {
			t.Errorf("round %d: pending records looked for %d times, want once; %d activities elsewhere, want %d",
				round, pending, elsewhere, 2*len(acts))
		}
	}

	// The holder of the first activity stops; a claim of it runs out.
	a := acts[0]
	stopped := holder[a.ID]
	c := activity.Claim{ActivityID: a.ID, UserID: "left", ClaimID: "left"}
	if err := env.Store.Claim(ctx, &c); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for reaped := 0; reaped == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("activity %d's claim not given back by another instance within 10 s of its holder stopping", a.ID)
		}
		time.Sleep(50 * time.Millisecond)
		for i, in := range ins {
			if i == stopped {
				continue
			}
			rep, err := in.svc.Reconcile(ctx)
			if err != nil {
				t.Fatal(err)
			}
			reaped += rep.Reaped
		}
	}
	if c, ok, err := env.Store.Counters(ctx, a.ID); err != nil || !ok || c.InFlight != 0 || c.Claimed != 0 {
		t.Fatalf("after the takeover: %+v %v %v, want the claim given back", c, ok, err)
	}
}

// TestJobSettlesWithoutItsLease: when the lease of the work of no one
// activity cannot be asked for (the master of its key is down), every
// instance settles the pending records rather than none, and says the
// cycle failed.
func TestJobSettlesWithoutItsLease(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	env.OpenActivity(t, 10, 1)
	ins := instances(t, env, 2, time.Minute)
	for _, in := range ins {
		in.svc = activity.NewService(in.repo, globalDown{in.slots}, env.Repo, env.Signer, testenv.Logger(t))
		if _, err := in.svc.Reconcile(ctx); err == nil {
			t.Error("a cycle without the job's lease reported no error")
		}
		if n := in.repo.take(); n != 1 {
			t.Errorf("pending records looked for %d times without the lease, want once by each instance", n)
		}
	}
}

// liveDown is an instance whose MySQL cannot list the live activities.
type liveDown struct{ *countedRepo }

func (liveDown) LiveActivities(context.Context, time.Duration) ([]*activity.Activity, error) {
	return nil, errors.New("mysql down from this instance")
}

// failingClose is an instance whose closes fail.
type failingClose struct{ *countedRepo }

func (failingClose) SetState(context.Context, int64, activity.State, activity.State) error {
	return errors.New("mysql refuses this instance's writes")
}

// TestJobWorkNotKeptByAFaultyInstance: an instance that cannot read the
// live activities, or whose work on an activity fails, does not keep the
// activity's work from a healthy instance: the activity past its end is
// closed by the healthy one.
func TestJobWorkNotKeptByAFaultyInstance(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		repo func(*countedRepo) activity.Repository
	}{
		{"CannotList", func(r *countedRepo) activity.Repository { return liveDown{r} }},
		{"WorkFails", func(r *countedRepo) activity.Repository { return failingClose{r} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := testenv.New(t, testenv.Options{})
			a := env.OpenActivity(t, 10, 1)
			ins := instances(t, env, 2, time.Minute)
			faulty, healthy := ins[0], ins[1]
			faulty.svc = activity.NewService(tt.repo(faulty.repo), faulty.slots, env.Repo, env.Signer, testenv.Logger(t))
			faulty.svc.SetJobLease("faulty", time.Minute)
			if _, err := env.DB.ExecContext(ctx, "UPDATE activities SET end_at = ? WHERE id = ?", time.Now().Add(-time.Second), a.ID); err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				// Once closed, the faulty instance has nothing left to fail.
				if _, err := faulty.svc.Reconcile(ctx); err == nil && i == 0 {
					t.Fatal("the faulty instance's cycle reported no error")
				}
				if _, err := healthy.svc.Reconcile(ctx); err != nil {
					t.Fatal(err)
				}
			}
			got, err := env.Svc.Get(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != activity.StateClosed {
				t.Fatalf("activity past its end is %s after the healthy instance's cycles, want closed", got.State)
			}
		})
	}
}
