package stock_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"seckill/activity"
	"seckill/internal/testenv"
	"seckill/stock"
)

// confirmed claims and confirms a slot for user, with an idempotency key.
func confirmed(t *testing.T, s *stock.Store, id int64, user, key string) activity.Claim {
	t.Helper()
	seq++
	c := activity.Claim{ActivityID: id, UserID: user, ClaimID: fmt.Sprintf("claim-%d", seq), IdempotencyKey: key}
	if err := s.Claim(context.Background(), &c); err != nil {
		t.Fatalf("claim for %s: %v", user, err)
	}
	if err := s.Confirm(context.Background(), c, time.Now()); err != nil {
		t.Fatalf("confirm for %s: %v", user, err)
	}
	return c
}

func settledAs(c activity.Claim) activity.Participation {
	return activity.Participation{ActivityID: c.ActivityID, Slot: c.Slot, UserID: c.UserID, ClaimID: c.ClaimID,
		Epoch: c.Epoch, Seq: c.Seq, IdempotencyKey: c.IdempotencyKey}
}

// TestForgetKeepsACountAndTheBit: once a token's record is settled, Redis
// keeps only the user's count and the slot's bit. The per-user limit still
// holds, a retry with the idempotency key is told to read its answer from
// MySQL, and the held list of a later claim no longer names the settled
// one (it is never in doubt).
func TestForgetKeepsACountAndTheBit(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 1, 5, 2)
	k := s.KeysOf(a.ID)
	rdb := s.Client()
	first := confirmed(t, s, a.ID, "ann", "k1")
	if err := s.Forget(ctx, a.ID, []activity.Participation{settledAs(first)}); err != nil {
		t.Fatal(err)
	}
	buckets := stock.UserBuckets(a.Stock)
	if got := rdb.HGet(ctx, k.UserKey("ann", buckets), "ann").Val(); got != "1" {
		t.Fatalf("ann's entry %q after forget, want the count 1", got)
	}
	if got := rdb.HGet(ctx, k.IdemKey("ann", buckets), "ann:k1").Val(); got != "s" {
		t.Fatalf("ann's idempotency answer %q after forget, want s", got)
	}
	for _, key := range []string{k.Confirmed, k.Held} {
		if n := rdb.HLen(ctx, key).Val(); n != 0 {
			t.Fatalf("%s keeps %d entries after forget", key, n)
		}
	}
	if bit := rdb.GetBit(ctx, k.Slots, first.Slot).Val(); bit != 1 {
		t.Fatalf("the slot's bit is %d after forget, want 1", bit)
	}
	// Forgetting again, or a claim the state does not know, changes nothing.
	if err := s.Forget(ctx, a.ID, []activity.Participation{settledAs(first), {ClaimID: "unknown", UserID: "ann", Seq: 9}}); err != nil {
		t.Fatal(err)
	}
	if got := rdb.HGet(ctx, k.UserKey("ann", buckets), "ann").Val(); got != "1" {
		t.Fatalf("ann's entry %q after a second forget, want 1", got)
	}

	retry := activity.Claim{ActivityID: a.ID, UserID: "ann", ClaimID: "retry", IdempotencyKey: "k1"}
	var replay *activity.Replay
	if err := s.Claim(ctx, &retry); !errors.As(err, &replay) || !replay.Settled {
		t.Fatalf("retry with the settled key: %v, want a replay read from MySQL", err)
	}
	second := confirmed(t, s, a.ID, "ann", "")
	if len(second.Held) != 0 {
		t.Fatalf("the second claim lists %v, want no claim in doubt", second.Held)
	}
	if got := rdb.HGet(ctx, k.UserKey("ann", buckets), "ann").Val(); got != fmt.Sprintf("1 %d", second.Seq) {
		t.Fatalf("ann's entry %q, want 1 and the second claim's seq %d", got, second.Seq)
	}
	var le *activity.LimitError
	third := activity.Claim{ActivityID: a.ID, UserID: "ann", ClaimID: "third"}
	if err := s.Claim(ctx, &third); !errors.As(err, &le) || le.Settled != 1 || len(le.Held) != 1 || le.Held[0].ClaimID != second.ClaimID {
		t.Fatalf("third claim: %v (%+v), want the limit with 1 settled, the unsettled one listed", err, le)
	}
	if got := counters(t, s, a.ID); got != (activity.Counters{Claimed: 2, Issued: 2}) {
		t.Fatalf("counters %+v, want 2 claimed and issued", got)
	}
}

// TestGiveBackAfterForgetKeepsTheCount: a user holding a settled token gives
// back a later claim: the count stays, the seq goes.
func TestGiveBackAfterForgetKeepsTheCount(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 1, 5, 2)
	k := s.KeysOf(a.ID)
	first := confirmed(t, s, a.ID, "bob", "")
	if err := s.Forget(ctx, a.ID, []activity.Participation{settledAs(first)}); err != nil {
		t.Fatal(err)
	}
	second := claim(t, s, a.ID, "bob")
	if err := s.Release(ctx, second); err != nil {
		t.Fatal(err)
	}
	if got := s.Client().HGet(ctx, k.UserKey("bob", stock.UserBuckets(a.Stock)), "bob").Val(); got != "1" {
		t.Fatalf("bob's entry %q after the release, want 1", got)
	}
	again := claim(t, s, a.ID, "bob")
	if again.Slot != second.Slot {
		t.Fatalf("the given-back slot %d was not sold again (got %d)", second.Slot, again.Slot)
	}
}

// TestUserBucketsStayListpacks: 2,000 settled users of a stock of 2,000, on
// a redis-server with the default configuration, fill the 32 users buckets
// and the idempotency buckets of the state, and every bucket stays a
// listpack, the compact encoding the memory figure depends on, also with
// the longest userIds and idempotency keys (64 and 128 characters).
func TestUserBucketsStayListpacks(t *testing.T) {
	const n = 2000
	ctx := context.Background()
	_, rdb, s := privateStore(t)
	a := &activity.Activity{ID: 1, Stock: n, PerUserLimit: 1, State: activity.StateOpen,
		BeginAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour)}
	if err := s.Preheat(ctx, a); err != nil {
		t.Fatal(err)
	}
	k := s.KeysOf(a.ID)
	buckets := stock.UserBuckets(n)
	user := func(i int) string {
		if i%2 == 0 {
			return fmt.Sprintf("user-%d", i)
		}
		return fmt.Sprintf("%064d", i) // the longest userId
	}
	for i := range n {
		c := confirmed(t, s, a.ID, user(i), fmt.Sprintf("%0128d", i))
		if err := s.Forget(ctx, a.ID, []activity.Participation{settledAs(c)}); err != nil {
			t.Fatal(err)
		}
	}
	total := int64(0)
	for b := range buckets {
		for _, key := range []string{fmt.Sprintf("%s%d", k.Users, b), fmt.Sprintf("%s%d", k.Idem, b)} {
			if enc := rdb.ObjectEncoding(ctx, key).Val(); enc != "listpack" {
				t.Fatalf("bucket %s is %q with %d entries, want listpack", key, enc, rdb.HLen(ctx, key).Val())
			}
		}
		total += rdb.HLen(ctx, fmt.Sprintf("%s%d", k.Users, b)).Val()
	}
	if total != n {
		t.Fatalf("%d entries over %d buckets, want %d", total, buckets, n)
	}
	// The Go side agrees with bucket.lua on where a user is, and a user of
	// a long userId is at the limit.
	for _, u := range []string{user(6), user(7)} {
		sum := sha1.Sum([]byte(u))
		var b32 uint32
		for _, x := range sum[:4] {
			b32 = b32<<8 | uint32(x)
		}
		key := k.UserKey(u, buckets)
		if want := fmt.Sprintf("%s%d", k.Users, int64(b32)%buckets); key != want {
			t.Fatalf("%s in %s, want %s (sha1 %s)", u, key, want, hex.EncodeToString(sum[:]))
		}
		if got := rdb.HGet(ctx, key, stock.UserField(u)).Val(); got != "1" {
			t.Fatalf("%s's entry %q, want 1", u, got)
		}
		var le *activity.LimitError
		c := activity.Claim{ActivityID: a.ID, UserID: u, ClaimID: "again"}
		if err := s.Claim(ctx, &c); !errors.As(err, &le) || le.Settled != 1 {
			t.Fatalf("%s again: %v, want the limit with 1 settled", u, err)
		}
	}
	if f := stock.UserField(user(7)); len(f) != 32 || f == user(7) {
		t.Fatalf("the field of a 64-character userId is %q", f)
	}
}

// TestDropDeletesEveryBucket: dropping a state of 200,000 slots deletes
// every one of its 3,125 user buckets (more than one call of the clear
// script does), and nothing else is left under its hash tag.
func TestDropDeletesEveryBucket(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 1, 200_000, 1)
	k := s.KeysOf(a.ID)
	rdb := s.Client()
	buckets := stock.UserBuckets(a.Stock)
	pipe := rdb.Pipeline()
	for b := range buckets {
		pipe.HSet(ctx, fmt.Sprintf("%s%d", k.Users, b), "u", 1)
		pipe.HSet(ctx, fmt.Sprintf("%s%d", k.Idem, b), "u:k", "s")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	confirmed(t, s, a.ID, "u1", "key")
	if err := s.Drop(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if left := testenv.Keys(t, rdb, strings.TrimSuffix(k.Meta, "meta")+"*"); len(left) != 0 {
		t.Fatalf("%d keys left after a drop: %v", len(left), left[:min(len(left), 5)])
	}
}

// TestPreheatClearsBucketsLeftByACutShortClear: a clear that died after its
// first call leaves user buckets without a meta hash. A preheat must not
// make them part of a new sale: the user they name can join.
func TestPreheatClearsBucketsLeftByACutShortClear(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 1, 5, 1)
	k := s.KeysOf(a.ID)
	rdb := s.Client()
	confirmed(t, s, a.ID, "cat", "")
	// What the first call of the clear leaves: the buckets and their count.
	keys := append([]string{k.Meta, k.Used, k.Issued, k.Slots, k.Leases, k.Confirmed, k.Held}, k.Legacy...)
	if err := rdb.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Preheat(ctx, a); err != nil {
		t.Fatal(err)
	}
	again := claim(t, s, a.ID, "cat")
	if again.Slot != 1 {
		t.Fatalf("cat's claim got slot %d, want 1 in a fresh state", again.Slot)
	}
}

// TestStateOfAnEarlierLayoutIsNotLive: a state written by an earlier version
// (its meta stamped with the bare replication ID, its users in one hash) is
// not live: claims answer no state, so it is rebuilt from MySQL instead of
// being read in the wrong layout; the rebuild deletes the old keys.
func TestStateOfAnEarlierLayoutIsNotLive(t *testing.T) {
	ctx := context.Background()
	s, a := newStore(t, 1, 5, 1)
	k := s.KeysOf(a.ID)
	rdb := s.Client()
	replid := ""
	for _, line := range strings.Split(rdb.Info(ctx, "replication").Val(), "\r\n") {
		if v, ok := strings.CutPrefix(line, "master_replid:"); ok {
			replid = v
		}
	}
	rdb.HSet(ctx, k.Meta, "replid", replid)
	rdb.HDel(ctx, k.Meta, "ub")
	for _, key := range k.Legacy[1:] {
		rdb.HSet(ctx, key, "dan", "p")
	}
	c := activity.Claim{ActivityID: a.ID, UserID: "dan", ClaimID: "c1"}
	if err := s.Claim(ctx, &c); !errors.Is(err, activity.ErrNoState) {
		t.Fatalf("claim on a state of the earlier layout: %v, want ErrNoState", err)
	}
	if _, ok, err := s.Counters(ctx, a.ID); ok || err != nil {
		t.Fatalf("counters of a state of the earlier layout: live %v, %v", ok, err)
	}
	a.Epoch = 2
	if err := rebuild(t, s, a, nil); err != nil {
		t.Fatal(err)
	}
	for _, key := range k.Legacy {
		if rdb.Exists(ctx, key).Val() != 0 {
			t.Fatalf("%s left after the rebuild", key)
		}
	}
	if got := claim(t, s, a.ID, "dan"); got.Epoch != 2 {
		t.Fatalf("claim after the rebuild in epoch %d, want 2", got.Epoch)
	}
}
