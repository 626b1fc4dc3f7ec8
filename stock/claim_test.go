package stock_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"seckill/activity"
	"seckill/stock"
)

// TestLimitCountsEveryClaim: a user of limit 3 holds three claims in
// flight. Each claim is numbered in turn and lists the ones before it; a
// fourth is refused, listing the confirmed tokens the user holds; a claim
// given back makes room for another.
func TestLimitCountsEveryClaim(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 1, 200, 3) // 200 slots: several user buckets
	var cs []activity.Claim
	for i := range 3 {
		c := claim(t, s, a.ID, "ann")
		if want := int64(i + 1); c.Seq != want {
			t.Fatalf("claim %d has seq %d, want %d", i+1, c.Seq, want)
		}
		if want := seqsOf(cs); !slices.Equal(c.Held, want) {
			t.Fatalf("claim %d lists %v, want the claims before it %v", i+1, c.Held, want)
		}
		cs = append(cs, c)
	}
	var le *activity.LimitError
	fourth := activity.Claim{ActivityID: a.ID, UserID: "ann", ClaimID: "fourth"}
	if err := s.Claim(ctx, &fourth); !errors.As(err, &le) || le.Settled != 0 || len(le.Held) != 0 {
		t.Fatalf("fourth claim: %v %+v, want the limit with nothing confirmed", err, le)
	}
	for _, c := range cs[:2] {
		if err := s.Confirm(ctx, c, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Claim(ctx, &fourth); !errors.As(err, &le) || le.Settled != 0 || len(le.Held) != 2 ||
		le.Held[0].ClaimID != cs[0].ClaimID || le.Held[1].ClaimID != cs[1].ClaimID {
		t.Fatalf("fourth claim after two confirms: %v %+v, want the limit listing both tokens", err, le)
	}
	if err := s.Release(ctx, cs[2]); err != nil {
		t.Fatal(err)
	}
	again := claim(t, s, a.ID, "ann")
	if again.Seq != 4 || !slices.Equal(again.Held, []int64{1, 2}) {
		t.Fatalf("claim after the release: seq %d lists %v, want seq 4 listing [1 2]", again.Seq, again.Held)
	}
}

func seqsOf(cs []activity.Claim) []int64 {
	var out []int64
	for _, c := range cs {
		out = append(out, c.Seq)
	}
	return out
}

// TestSoldOutOnceEverySlotIsIssued: with every slot claimed a claim is
// told that some are only in flight; once they are all confirmed it is
// told the activity is sold out, for good.
func TestSoldOutOnceEverySlotIsIssued(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 1, 2, 1)
	cs := []activity.Claim{claim(t, s, a.ID, "ann"), claim(t, s, a.ID, "bob")}
	late := activity.Claim{ActivityID: a.ID, UserID: "cat", ClaimID: "late"}
	if err := s.Claim(ctx, &late); !errors.Is(err, activity.ErrSlotsInFlight) {
		t.Fatalf("claim with every slot in flight: %v, want ErrSlotsInFlight", err)
	}
	for _, c := range cs {
		if err := s.Confirm(ctx, c, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Claim(ctx, &late); !errors.Is(err, activity.ErrSoldOut) {
		t.Fatalf("claim with every slot issued: %v, want ErrSoldOut", err)
	}
	if got := counters(t, s, a.ID); got != (activity.Counters{Claimed: 2, Issued: 2}) {
		t.Fatalf("counters %+v, want 2 claimed and issued", got)
	}
}

// TestRetryWithTheIdempotencyKey: a join retried with its idempotency key
// is told it is still in flight while its first claim is, gets the first
// answer once that is confirmed, and claims anew if the first was given
// back. The first claim's ID is picked in another user bucket than the
// user's, so that an answer filed under the wrong one is missed.
func TestRetryWithTheIdempotencyKey(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 1, 200, 2)
	k := s.KeysOf(a.ID)
	buckets := stock.UserBuckets(a.Stock)
	otherBucket := func(prefix string) string {
		for i := 0; ; i++ {
			if id := fmt.Sprintf("%s-%d", prefix, i); k.IdemKey(id, buckets) != k.IdemKey("ann", buckets) {
				return id
			}
		}
	}
	first := activity.Claim{ActivityID: a.ID, UserID: "ann", ClaimID: otherBucket("first"), IdempotencyKey: "k1"}
	if err := s.Claim(ctx, &first); err != nil {
		t.Fatal(err)
	}

	t.Run("InFlight", func(t *testing.T) {
		retry := activity.Claim{ActivityID: a.ID, UserID: "ann", ClaimID: "retry-1", IdempotencyKey: "k1"}
		if err := s.Claim(ctx, &retry); !errors.Is(err, activity.ErrUnavailable) {
			t.Fatalf("retry while the first claim is in flight: %v (slot %d), want unavailable", err, retry.Slot)
		}
		if got := counters(t, s, a.ID).Claimed; got != 1 {
			t.Fatalf("claimed %d, want the first claim only", got)
		}
	})
	t.Run("Confirmed", func(t *testing.T) {
		if err := s.Confirm(ctx, first, time.Now()); err != nil {
			t.Fatal(err)
		}
		retry := activity.Claim{ActivityID: a.ID, UserID: "ann", ClaimID: "retry-2", IdempotencyKey: "k1"}
		var replay *activity.Replay
		if err := s.Claim(ctx, &retry); !errors.As(err, &replay) || replay.Settled ||
			replay.Participation.ClaimID != first.ClaimID || replay.Participation.Slot != first.Slot {
			t.Fatalf("retry of the confirmed join: %v %+v, want the first answer", err, replay)
		}
	})
	t.Run("GivenBack", func(t *testing.T) {
		c := activity.Claim{ActivityID: a.ID, UserID: "ann", ClaimID: otherBucket("second"), IdempotencyKey: "k2"}
		if err := s.Claim(ctx, &c); err != nil {
			t.Fatal(err)
		}
		if err := s.Release(ctx, c); err != nil {
			t.Fatal(err)
		}
		retry := activity.Claim{ActivityID: a.ID, UserID: "ann", ClaimID: "retry-3", IdempotencyKey: "k2"}
		if err := s.Claim(ctx, &retry); err != nil {
			t.Fatalf("retry of a join given back: %v, want a new claim", err)
		}
	})
}

// TestClaimFindsANumberPastTheBitmap: the used counter is one behind the
// bitmap (a state that lost a count, as in TestClaimAroundAStaleLock), so
// the claim's number is one whose bit is set, and every bit the bitmap holds
// is set. The first free number lies just past the bitmap's end, where
// BITPOS does not look: the claim takes it.
func TestClaimFindsANumberPastTheBitmap(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 1, 16, 1)
	for i := range 7 { // slots 1 to 7: the bitmap's first byte, full
		claim(t, s, a.ID, fmt.Sprintf("user-%d", i))
	}
	s.Client().Decr(ctx, s.KeysOf(a.ID).Used)
	if c := claim(t, s, a.ID, "late"); c.Slot != 8 {
		t.Fatalf("claim got slot %d, want 8", c.Slot)
	}
}

// TestUserIDsAroundThe32CharacterBound: a userId of up to 31 characters
// stands as itself in its users bucket, one of 32 or more as the first 32
// hex digits of its SHA-1: UserField and UserKey name the entry the scripts
// write, in a state of several buckets.
func TestUserIDsAroundThe32CharacterBound(t *testing.T) {
	s, a := newStore(t, 1, 200, 1)
	k := s.KeysOf(a.ID)
	buckets := stock.UserBuckets(a.Stock)
	for _, n := range []int{31, 32, 33} {
		user := strings.Repeat("u", n)
		c := claim(t, s, a.ID, user)
		if f := stock.UserField(user); (n < 32) != (f == user) || len(f) > 32 {
			t.Fatalf("the field of a %d-character userId is %q", n, f)
		}
		got := s.Client().HGet(context.Background(), k.UserKey(user, buckets), stock.UserField(user)).Val()
		if want := fmt.Sprintf("0 %d", c.Seq); got != want {
			t.Fatalf("the entry of a %d-character userId is %q, want %q", n, got, want)
		}
	}
}
