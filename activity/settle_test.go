package activity_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"seckill/activity"
	"seckill/activity/mysql"
	"seckill/internal/testenv"
)

// claimFor takes a slot for user straight from the slot store, as a join
// does, and returns the claim with the participation its join would record.
func claimFor(t *testing.T, env *testenv.Env, id int64, user string) (activity.Claim, activity.Participation) {
	t.Helper()
	var nonce [12]byte
	_, _ = rand.Read(nonce[:])
	c := activity.Claim{ActivityID: id, UserID: user, ClaimID: base64.RawURLEncoding.EncodeToString(nonce[:])}
	if err := env.Store.Claim(context.Background(), &c); err != nil {
		t.Fatalf("claim for %s: %v", user, err)
	}
	p := activity.Participation{
		Token: env.Signer.Sign(id, c.Slot, nonce), ActivityID: id, Slot: c.Slot, UserID: user, ClaimID: c.ClaimID,
		Epoch: c.Epoch, Seq: c.Seq, Held: c.Held, IssuedAt: time.Now().UTC().Truncate(time.Millisecond),
	}
	return c, p
}

// eachOutcome makes one participation for each thing Redis can know of a
// claim: still in flight, confirmed, given back, and nothing at all (its
// activity's state is lost).
func eachOutcome(t *testing.T, env *testenv.Env) map[string]activity.Participation {
	t.Helper()
	ctx := context.Background()
	a := env.OpenActivity(t, 5, 1)
	_, inFlight := claimFor(t, env, a.ID, "in-flight")
	c, confirmed := claimFor(t, env, a.ID, "confirmed")
	if err := env.Store.Confirm(ctx, c, confirmed.IssuedAt); err != nil {
		t.Fatal(err)
	}
	c, givenBack := claimFor(t, env, a.ID, "given-back")
	if err := env.Store.Release(ctx, c); err != nil {
		t.Fatal(err)
	}
	// A confirmed claim of another activity, whose state Redis then loses.
	b := env.OpenActivity(t, 5, 1)
	c, noState := claimFor(t, env, b.ID, "no-state")
	if err := env.Store.Confirm(ctx, c, noState.IssuedAt); err != nil {
		t.Fatal(err)
	}
	keys := testenv.Keys(t, env.Redis, fmt.Sprintf("%s:{%d}:*", env.Prefix, b.ID))
	if err := env.Redis.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
	return map[string]activity.Participation{
		"InFlight": inFlight, "Confirmed": confirmed, "GivenBack": givenBack, "NoState": noState,
	}
}

// wantStatus is the status a record must have once it is settled from what
// Redis knows: valid only for a confirmed claim, void only for one given
// back, and pending while Redis cannot tell yet.
var wantStatus = map[string]activity.RecordStatus{
	"InFlight":  activity.RecordPending,
	"Confirmed": activity.RecordValid,
	"GivenBack": activity.RecordVoid,
	"NoState":   activity.RecordPending,
}

func checkStatuses(t *testing.T, env *testenv.Env, ps map[string]activity.Participation) {
	t.Helper()
	for name, p := range ps {
		t.Run(name, func(t *testing.T) {
			got, err := env.Repo.Participation(context.Background(), p.Token)
			if err != nil || got.Status != wantStatus[name] {
				t.Fatalf("record %+v, %v; want status %s", got, err, wantStatus[name])
			}
		})
	}
}

// TestStoreEventsSettlesWhatRedisKnows: the consumer stores each event
// valid when its claim was confirmed, void when it was given back, and
// pending when the claim is still in flight or Redis has lost the state.
func TestStoreEventsSettlesWhatRedisKnows(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	ps := eachOutcome(t, env)
	events := slices.Collect(maps.Values(ps))
	if err := env.Svc.StoreEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	checkStatuses(t, env, ps)
	// The confirmed claim is valid in MySQL now, and Redis lets it go.
	if _, err := env.Svc.Token(ctx, ps["Confirmed"].Token); err != nil {
		t.Fatalf("token of the confirmed claim after it was stored: %v", err)
	}
}

// TestSettlePendingByOutcome: the job settles pending records the same
// way, and counts what it did.
func TestSettlePendingByOutcome(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	ps := eachOutcome(t, env)
	records := slices.Collect(maps.Values(ps))
	if err := env.Repo.RecordBatch(ctx, records); err != nil {
		t.Fatal(err)
	}
	n, err := env.Svc.SettlePending(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if n != (activity.Settled{Valid: 1, Void: 1, Pending: 2}) {
		t.Errorf("settled %+v, want one valid, one void and two left pending", n)
	}
	checkStatuses(t, env, ps)
}

// TestSettlingLeavesAJoinInFlightAlone: a join is paused between writing
// its record and confirming its claim while the job runs. The job must
// leave the record pending; the join then finishes, answers its token, the
// token verifies, and the record ends valid.
func TestSettlingLeavesAJoinInFlightAlone(t *testing.T) {
	ctx := context.Background()
	stall := &stallingRecorder{recorded: make(chan struct{}), release: make(chan struct{})}
	env := testenv.New(t, testenv.Options{Recorder: func(r *mysql.Repository) activity.Recorder {
		stall.Repository = r
		return stall
	}})
	a := env.OpenActivity(t, 1, 1)
	type answer struct {
		p   *activity.Participation
		err error
	}
	done := make(chan answer, 1)
	go func() {
		p, err := env.Svc.Join(ctx, a.ID, "alice", "")
		done <- answer{p, err}
	}()
	<-stall.recorded // the record is written; the join has not confirmed yet
	rep, err := env.Job.Cycle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pending != 1 || rep.Void != 0 || rep.Valid != 0 || rep.Reaped != 0 {
		t.Errorf("cycle during the join: %+v, want its record left pending", rep)
	}
	if rec, err := env.Repo.Participation(ctx, stall.token); err != nil || rec.Status != activity.RecordPending {
		t.Errorf("record during the join: %+v, %v; want pending", rec, err)
	}
	close(stall.release)
	got := <-done
	if got.err != nil {
		t.Fatalf("the paused join: %v, want its token", got.err)
	}
	if p, err := env.Svc.Token(ctx, got.p.Token); err != nil || p.UserID != "alice" {
		t.Fatalf("token of the paused join: %+v, %v; want alice's", p, err)
	}
	env.Reconcile(t)
	if rec, err := env.Repo.Participation(ctx, got.p.Token); err != nil || rec.Status != activity.RecordValid {
		t.Fatalf("record after the join finished: %+v, %v; want valid", rec, err)
	}
	if _, err := env.Svc.Token(ctx, got.p.Token); err != nil {
		t.Fatalf("token once its record is settled: %v", err)
	}
}

// TestStoreEventsForgetsEveryActivity: one batch of events of several
// activities, their claims confirmed, leaves none of their confirmed
// entries in Redis once the records are valid.
func TestStoreEventsForgetsEveryActivity(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	var ps []activity.Participation
	for range 3 {
		a := env.OpenActivity(t, 5, 1)
		c, p := claimFor(t, env, a.ID, "ann")
		if err := env.Store.Confirm(ctx, c, p.IssuedAt); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	if err := env.Svc.StoreEvents(ctx, ps); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if _, ok, err := env.Store.Confirmed(ctx, p.ActivityID, p.ClaimID); ok || err != nil {
			t.Errorf("activity %d: the confirmed claim is still kept (%v) after its record is valid", p.ActivityID, err)
		}
	}
}
