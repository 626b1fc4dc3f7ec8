package mysql_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"seckill/activity"
	"seckill/activity/mysql"
	"seckill/internal/testenv"
)

// TestRepositoryShards: the shards of an activity are written on create
// and edit and read back by one read and by a listing.
func TestRepositoryShards(t *testing.T) {
	t.Parallel()
	db := testenv.MySQL(t)
	repo := mysql.NewRepository(db)
	ctx := context.Background()
	begin := time.Now().UTC().Truncate(time.Millisecond).Add(time.Hour)
	a := &activity.Activity{Name: "sharded", Stock: 10, PerUserLimit: 1, Shards: 7, BeginAt: begin, EndAt: begin.Add(time.Hour),
		State: activity.StateDraft, Surplus: 10}
	if err := repo.CreateActivity(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got, err := repo.Activity(ctx, a.ID); err != nil || got.Shards != 7 {
		t.Fatalf("read back %+v, %v, want 7 shards", got, err)
	}
	a.Shards = activity.MaxShards
	if err := repo.UpdateActivity(ctx, a, activity.StateDraft); err != nil {
		t.Fatal(err)
	}
	page, err := repo.Activities(ctx, activity.ListFilter{Limit: 10})
	if err != nil || len(page) != 1 || page[0].Shards != activity.MaxShards {
		t.Fatalf("listed %v, %v, want the one activity with %d shards", page, err, activity.MaxShards)
	}
}

// TestShardsMigrationDefaultsToOne: the activities made before migration
// 009 have 1 shard after it.
func TestShardsMigrationDefaultsToOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testenv.MySQL(t)
	if _, err := db.Exec("ALTER TABLE activities DROP COLUMN shards"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("DELETE FROM schema_migrations WHERE version = 9"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO activities (name, description, stock, per_user_limit, begin_at, end_at, state, surplus, created_at, updated_at)
		VALUES ('old', '', 5, 1, NOW(3), NOW(3) + INTERVAL 1 HOUR, 'open', 5, NOW(3), NOW(3))`); err != nil {
		t.Fatal(err)
	}
	if err := mysql.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	var shards []int
	if err := db.Select(&shards, "SELECT shards FROM activities"); err != nil {
		t.Fatal(err)
	}
	if len(shards) != 1 || shards[0] != 1 {
		t.Fatalf("shards after migration 009: %v, want [1]", shards)
	}
}

// TestBeginShardRebuild: the rebuild of one shard settles the pending
// records of its users only (void those on numbers that left it, and those
// of an epoch of the shard rebuilt before), moves its epoch alone on to the
// activity's next, and a later whole rebuild settles every shard's in its
// own epoch and puts them all in one again.
func TestBeginShardRebuild(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo, a, users, record := shardedRecords(t, 30, map[int]int{0: 3, 1: 6, 2: 3})
	status := func(token string) activity.RecordStatus {
		t.Helper()
		p, err := repo.Participation(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		return p.Status
	}
	const pending, valid, void = activity.RecordPending, activity.RecordValid, activity.RecordVoid
	record("doubt", users[1][0], 5, 1, 3, pending)      // in doubt: kept
	record("left", users[1][1], 7, 1, 4, pending)       // on a number that left: void
	record("later", users[1][2], 9, 1, 10, pending)     // a later claim of its slot came: void
	record("after", users[2][0], 9, 1, 12, void)        // ... on another shard
	record("live", users[0][0], 11, 1, 2, pending)      // another shard's: left alone
	record("livevalid", users[2][1], 13, 1, 5, pending) // another shard's: left alone
	left := func(slot int64) bool { return slot == 7 }
	got, err := repo.BeginShardRebuild(ctx, a.ID, 1, left, activity.DecideLost)
	if err != nil {
		t.Fatal(err)
	}
	if got.Epoch != 2 || !slices.Equal(got.ShardEpochs, []int64{1, 2, 1}) {
		t.Fatalf("after the rebuild of shard 1: epoch %d, shard epochs %v, want 2 and [1 2 1]", got.Epoch, got.ShardEpochs)
	}
	for token, want := range map[string]activity.RecordStatus{"doubt": valid, "left": void, "later": void, "live": pending, "livevalid": pending} {
		if s := status(token); s != want {
			t.Errorf("record %s: %s, want %s", token, s, want)
		}
	}
	// The lost epoch's late record, and the rebuilt shard's first: the
	// second rebuild of the shard voids the one, decides the other.
	record("late", users[1][3], 15, 1, 50, pending)
	record("new", users[1][4], 15, 2, 41, pending)
	if got, err = repo.BeginShardRebuild(ctx, a.ID, 1, func(int64) bool { return false }, activity.DecideLost); err != nil {
		t.Fatal(err)
	}
	if got.Epoch != 3 || !slices.Equal(got.ShardEpochs, []int64{1, 3, 1}) {
		t.Fatalf("after the second rebuild of shard 1: epoch %d, shard epochs %v, want 3 and [1 3 1]", got.Epoch, got.ShardEpochs)
	}
	// The superseded record has the higher claim number on slot 15, yet
	// the new one stays: its number is not ordered with the epoch's since.
	if s, n := status("late"), status("new"); s != void || n != valid {
		t.Errorf("late %s, new %s: want void and valid", s, n)
	}
	// A whole rebuild: the other shards' pending records, in their epoch,
	// are settled; every shard is in the new epoch.
	if got, err = repo.BeginRebuild(ctx, a.ID, activity.DecideLost); err != nil {
		t.Fatal(err)
	}
	if got.Epoch != 4 || got.ShardEpochs != nil || got.ShardEpoch(1) != 4 {
		t.Fatalf("after a whole rebuild: epoch %d, shard epochs %v, want 4 and none", got.Epoch, got.ShardEpochs)
	}
	if s, l := status("live"), status("livevalid"); s != valid || l != valid {
		t.Errorf("live %s, livevalid %s after the whole rebuild: want valid", s, l)
	}
	if back, err := repo.Activity(ctx, a.ID); err != nil || back.Epoch != 4 || back.ShardEpochs != nil {
		t.Fatalf("read back %+v, %v", back, err)
	}
}

// shardedRecords makes an open activity of the given stock over 3 shards,
// on a database of its own, with users homed on each shard (as many as
// perShard says), and returns record, which stores one participation of
// it as RecordBatch does.
func shardedRecords(t *testing.T, stockN int64, perShard map[int]int) (*mysql.Repository, *activity.Activity, map[int][]string,
	func(token, user string, slot, epoch, seq int64, status activity.RecordStatus)) {
	t.Helper()
	ctx := context.Background()
	repo := mysql.NewRepository(testenv.MySQL(t))
	begin := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Hour)
	a := &activity.Activity{Name: "sharded", Stock: stockN, PerUserLimit: 1, Shards: 3, BeginAt: begin, EndAt: begin.Add(2 * time.Hour),
		State: activity.StateOpen, Surplus: stockN}
	if err := repo.CreateActivity(ctx, a); err != nil {
		t.Fatal(err)
	}
	users := map[int][]string{}
	for j, n := range perShard {
		users[j] = testenv.HomedOn("u"+strconv.Itoa(j)+"-", n, j, 3)
	}
	claimID := 0
	record := func(token, user string, slot, epoch, seq int64, status activity.RecordStatus) {
		t.Helper()
		claimID++
		p := activity.Participation{Token: token, ActivityID: a.ID, Slot: slot, UserID: user, ClaimID: fmt.Sprintf("%0*d", activity.ClaimIDLen, claimID),
			Epoch: epoch, Seq: seq, IssuedAt: time.Now().UTC().Truncate(time.Millisecond), Status: status}
		if err := repo.RecordBatch(ctx, []activity.Participation{p}); err != nil {
			t.Fatal(err)
		}
	}
	return repo, a, users, record
}
