package mysql_test

import (
	"context"
	"slices"
	"testing"

	"seckill/activity"
)

// TestShardedWholeRebuildAfterShardRebuildsSettlesMixedEpochs: shards 1
// and then 2 of 3 are rebuilt alone (shard epochs 1, 2, 3),
// and the whole activity is rebuilt next, with pending records in each
// shard's epoch on numbers that moved across shards after the shard
// rebuilds (the claim sequence goes up along each move). The last claim of
// each slot stays valid, the earlier ones are void, and the late record of
// an earlier epoch of a shard is void whatever its claim number.
func TestShardedWholeRebuildAfterShardRebuildsSettlesMixedEpochs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo, a, users, record := shardedRecords(t, 40, map[int]int{0: 6, 1: 6, 2: 6})
	const pending, valid, void = activity.RecordPending, activity.RecordValid, activity.RecordVoid
	none := func(int64) bool { return false }
	// Epoch 1 everywhere; shard 1 lost with nothing pending, rebuilt in 2
	// with its claim sequence after the live shards' (100).
	if _, err := repo.BeginShardRebuild(ctx, a.ID, 1, none, activity.DecideLost); err != nil {
		t.Fatal(err)
	}
	// Slot 3: shard 1 claims it (101, given back, pending), moves it to
	// shard 0 (seq up to 101), which claims it (102, answered 200).
	record("s3-one", users[1][0], 3, 2, 101, pending)
	record("s3-zero", users[0][0], 3, 1, 102, pending)
	// Slot 4: shard 0 claims it (60, given back), it moves to shard 1
	// before the loss of shard 1... then back to shard 2 (110), answered.
	record("s4-zero", users[0][1], 4, 1, 60, pending)
	record("s4-two", users[2][0], 4, 1, 110, pending)
	// Slot 5: a late record of shard 1's epoch 1, on a number shard 1
	// had; shard 2 claims it in its epoch (120, answered).
	record("s5-late", users[1][1], 5, 1, 500, pending)
	record("s5-two", users[2][1], 5, 1, 120, pending)
	// Shard 2 lost, rebuilt alone in 3, its sequence after the live
	// shards' (130): its two pending records are in doubt, both last of
	// their slots, kept.
	got, err := repo.BeginShardRebuild(ctx, a.ID, 2, none, activity.DecideLost)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.ShardEpochs, []int64{1, 2, 3}) {
		t.Fatalf("shard epochs %v, want [1 2 3]", got.ShardEpochs)
	}
	// Slot 6: shard 2 claims it (131, given back), moves it to shard 1
	// (seq up to 131), which claims it (132, answered); slot 7: shard 1
	// claims it (133, given back), moves it to shard 0 (133), which claims
	// it (134, answered), and shard 2 claims slot 8 (135, answered).
	record("s6-two", users[2][2], 6, 3, 131, pending)
	record("s6-one", users[1][2], 6, 2, 132, pending)
	record("s7-one", users[1][3], 7, 2, 133, pending)
	record("s7-zero", users[0][2], 7, 1, 134, pending)
	record("s8-two", users[2][3], 8, 3, 135, pending)
	// A record of shard 2's epoch 1 that came late, on slot 8: void.
	record("s8-late", users[2][4], 8, 1, 900, pending)
	if got, err = repo.BeginRebuild(ctx, a.ID, activity.DecideLost); err != nil {
		t.Fatal(err)
	}
	if got.Epoch != 4 || got.ShardEpochs != nil {
		t.Fatalf("after the whole rebuild: epoch %d, shard epochs %v", got.Epoch, got.ShardEpochs)
	}
	for token, want := range map[string]activity.RecordStatus{
		"s3-one": void, "s3-zero": valid, "s4-zero": void, "s4-two": valid, "s5-late": void, "s5-two": valid,
		"s6-two": void, "s6-one": valid, "s7-one": void, "s7-zero": valid, "s8-two": valid, "s8-late": void,
	} {
		p, err := repo.Participation(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		if p.Status != want {
			t.Errorf("record %s: %s, want %s", token, p.Status, want)
		}
	}
}
