package mysql_test

import (
	"context"
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
