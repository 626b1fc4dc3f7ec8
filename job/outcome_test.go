package job_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"seckill/activity"
	"seckill/internal/testenv"
	"seckill/stock"
)

// claimAndRecord takes a slot for user from store, as a join does, and
// writes its record pending, as the event log does.
func claimAndRecord(t *testing.T, env *testenv.Env, store *stock.Store, id int64, user string) (activity.Claim, activity.Participation) {
	t.Helper()
	ctx := context.Background()
	var nonce [12]byte
	_, _ = rand.Read(nonce[:])
	c := activity.Claim{ActivityID: id, UserID: user, ClaimID: base64.RawURLEncoding.EncodeToString(nonce[:])}
	if err := store.Claim(ctx, &c); err != nil {
		t.Fatalf("claim for %s: %v", user, err)
	}
	p := activity.Participation{
		Token: env.Signer.Sign(id, c.Slot, nonce), ActivityID: id, Slot: c.Slot, UserID: user, ClaimID: c.ClaimID,
		Epoch: c.Epoch, Seq: c.Seq, Held: c.Held, IssuedAt: time.Now().UTC().Truncate(time.Millisecond),
	}
	if err := env.Repo.Record(ctx, p); err != nil {
		t.Fatal(err)
	}
	return c, p
}

// TestCycleByOutcome: one cycle of the job over a pending record of each
// kind of claim. It settles valid the record of a confirmed claim and void
// those of a claim given back and of one whose lease ran out (which it
// reaps); it leaves pending the record of a claim in flight and that of an
// activity whose lost state another instance is rebuilding. Once that
// rebuild is left to it, the next cycle rebuilds and settles the last one.
func TestCycleByOutcome(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{Lease: 200 * time.Millisecond})
	// Another instance, whose claims hold their slots for an hour.
	patient := stock.New(env.Redis, stock.Options{Prefix: env.Prefix, Lease: time.Hour})
	t.Cleanup(patient.Stop)
	a := env.OpenActivity(t, 10, 1)

	_, expired := claimAndRecord(t, env, env.Store, a.ID, "expired")
	time.Sleep(300 * time.Millisecond) // past its lease
	c, confirmed := claimAndRecord(t, env, env.Store, a.ID, "confirmed")
	if err := env.Store.Confirm(ctx, c, confirmed.IssuedAt); err != nil {
		t.Fatal(err)
	}
	c, givenBack := claimAndRecord(t, env, env.Store, a.ID, "given-back")
	if err := env.Store.Release(ctx, c); err != nil {
		t.Fatal(err)
	}
	_, inFlight := claimAndRecord(t, env, patient, a.ID, "in-flight")

	b := env.OpenActivity(t, 10, 1)
	c, noState := claimAndRecord(t, env, env.Store, b.ID, "no-state")
	if err := env.Store.Confirm(ctx, c, noState.IssuedAt); err != nil {
		t.Fatal(err)
	}
	keys := testenv.Keys(t, env.Redis, fmt.Sprintf("%s:{%d}:*", env.Prefix, b.ID))
	if err := env.Redis.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
	elsewhere, err := env.Store.Lock(ctx, b.ID, "rebuild", time.Minute)
	if err != nil || elsewhere == nil {
		t.Fatalf("take the rebuild lock: %v", err)
	}

	rep, err := env.Job.Cycle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Reaped != 1 || rep.Valid != 1 || rep.Void != 2 || rep.Pending != 2 || rep.Rebuilt != 0 {
		t.Errorf("cycle %+v, want 1 reaped, 1 valid, 2 void, 2 pending, nothing rebuilt", rep)
	}
	for _, tc := range []struct {
		name string
		p    activity.Participation
		want activity.RecordStatus
	}{
		{"Expired", expired, activity.RecordVoid},
		{"Confirmed", confirmed, activity.RecordValid},
		{"GivenBack", givenBack, activity.RecordVoid},
		{"InFlight", inFlight, activity.RecordPending},
		{"NoState", noState, activity.RecordPending},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := env.Repo.Participation(ctx, tc.p.Token)
			if err != nil || got.Status != tc.want {
				t.Fatalf("record %+v, %v; want %s", got, err, tc.want)
			}
		})
	}
	t.Run("ReapedSlotIsFree", func(t *testing.T) {
		c, ok, err := env.Store.Counters(ctx, a.ID)
		if err != nil || !ok || c != (activity.Counters{Claimed: 2, InFlight: 1, Issued: 1}) {
			t.Fatalf("counters %+v %v %v, want the confirmed and the in-flight claims only", c, ok, err)
		}
	})
	t.Run("RebuiltOnceLeftToIt", func(t *testing.T) {
		elsewhere.Release()
		rep, err := env.Job.Cycle(ctx)
		if err != nil || rep.Rebuilt != 1 {
			t.Fatalf("cycle %+v %v, want the lost state rebuilt", rep, err)
		}
		if got, err := env.Repo.Participation(ctx, noState.Token); err != nil || got.Status != activity.RecordValid {
			t.Fatalf("record %+v, %v; want valid: its claim may have been answered 200", got, err)
		}
	})
}
