package mysql_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"seckill/activity"
	"seckill/activity/mysql"
	"seckill/internal/testenv"
)

func outboxTokens(ps []activity.Participation) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Token
	}
	return out
}

// TestOutbox: Unpublished returns the valid records not yet published,
// oldest first, each with its fields, and never a pending or a void one;
// a pending record joins it once settled valid; MarkPublished takes records
// out of it for good, marking one twice or a token without a record
// changing nothing.
func TestOutbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testenv.MySQL(t)
	repo := mysql.NewRepository(db)
	a := &activity.Activity{Name: "outbox", Stock: 100, PerUserLimit: 1, State: activity.StateOpen,
		BeginAt: time.Now(), EndAt: time.Now().Add(time.Hour)}
	if err := repo.CreateActivity(ctx, a); err != nil {
		t.Fatal(err)
	}
	issued := time.Now().UTC().Truncate(time.Millisecond)
	rec := func(i int, status activity.RecordStatus) activity.Participation {
		t.Helper()
		p := activity.Participation{Token: fmt.Sprintf("outbox%048d", i), ActivityID: a.ID, Slot: int64(i),
			UserID: fmt.Sprintf("u-%d", i), ClaimID: fmt.Sprintf("c%015d", i), Epoch: 2, Seq: int64(i),
			IssuedAt: issued.Add(time.Duration(i) * time.Millisecond), Status: status}
		if err := repo.RecordBatch(ctx, []activity.Participation{p}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // recorded_at in order, to the millisecond
		return p
	}
	var valid []activity.Participation
	for i := 1; i <= 4; i++ {
		valid = append(valid, rec(i, activity.RecordValid))
	}
	void := rec(5, activity.RecordVoid)
	pending := rec(6, activity.RecordPending)
	late := rec(7, activity.RecordPending) // settled void below
	valid = append(valid, rec(8, activity.RecordValid))

	unpublished := func(limit int) []activity.Participation {
		t.Helper()
		ps, err := repo.Unpublished(ctx, limit)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	t.Run("OnlyValidOldestFirst", func(t *testing.T) {
		got := unpublished(100)
		if !slices.Equal(outboxTokens(got), outboxTokens(valid)) {
			t.Fatalf("Unpublished = %q, want the valid records oldest first %q", outboxTokens(got), outboxTokens(valid))
		}
		for i, p := range got {
			w := valid[i]
			if p.Token != w.Token || p.ActivityID != w.ActivityID || p.Slot != w.Slot || p.UserID != w.UserID ||
				p.ClaimID != w.ClaimID || p.Epoch != w.Epoch || p.Seq != w.Seq || !p.IssuedAt.Equal(w.IssuedAt) ||
				p.Status != activity.RecordValid {
				t.Errorf("record %d = %+v, want %+v valid", i, p, w)
			}
		}
		if got := unpublished(2); !slices.Equal(outboxTokens(got), outboxTokens(valid[:2])) {
			t.Errorf("Unpublished(2) = %q, want the two oldest", outboxTokens(got))
		}
	})
	t.Run("SettledValidJoins", func(t *testing.T) {
		if err := repo.SettleParticipations(ctx, []activity.Participation{pending}, []activity.Participation{late}); err != nil {
			t.Fatal(err)
		}
		got := outboxTokens(unpublished(100))
		if !slices.Contains(got, pending.Token) {
			t.Errorf("a record settled valid is not in the outbox: %q", got)
		}
		for _, tok := range []string{void.Token, late.Token} {
			if slices.Contains(got, tok) {
				t.Errorf("void record %s is in the outbox", tok)
			}
		}
	})
	t.Run("MarkPublished", func(t *testing.T) {
		mark := []string{valid[0].Token, valid[2].Token, void.Token, "no-such-token"}
		for range 2 {
			if err := repo.MarkPublished(ctx, mark); err != nil {
				t.Fatal(err)
			}
		}
		got := outboxTokens(unpublished(100))
		want := []string{valid[1].Token, valid[3].Token, pending.Token, valid[4].Token}
		// pending was recorded before valid[4]: oldest first by record.
		if !slices.Equal(got, want) {
			t.Fatalf("after marking: %q, want %q", got, want)
		}
		// A redelivered event of a published record leaves it published.
		if err := repo.RecordBatch(ctx, []activity.Participation{valid[0]}); err != nil {
			t.Fatal(err)
		}
		if err := repo.MarkPublished(ctx, nil); err != nil {
			t.Fatalf("MarkPublished of nothing: %v", err)
		}
		if err := repo.MarkPublished(ctx, got); err != nil {
			t.Fatal(err)
		}
		if got := unpublished(100); len(got) != 0 {
			t.Fatalf("after marking every one: %q left", outboxTokens(got))
		}
	})
	t.Run("IndexSeek", func(t *testing.T) {
		checkOutboxPlan(t, db)
	})
}

// checkOutboxPlan fails unless Unpublished's query reads the outbox index
// in its order, without sorting.
func checkOutboxPlan(t *testing.T, db *sqlx.DB) {
	t.Helper()
	rows, err := db.Queryx(`EXPLAIN SELECT token FROM participations FORCE INDEX (idx_participations_outbox)
		WHERE published = 0 AND status = 'valid' ORDER BY recorded_at, token LIMIT 10`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []map[string]any
	for rows.Next() {
		m := map[string]any{}
		if err := rows.MapScan(m); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, m)
	}
	text := func(v any) string { b, _ := v.([]byte); return string(b) }
	if len(plan) != 1 || text(plan[0]["key"]) != "idx_participations_outbox" || strings.Contains(text(plan[0]["Extra"]), "filesort") {
		t.Fatalf("plan key %q extra %q, want the outbox index read in order", text(plan[0]["key"]), text(plan[0]["Extra"]))
	}
}

// TestOutboxMigrationMarksOldRecords: the records valid before migration
// 006 predate the tokens topic and are not published; those pending then
// are, once valid.
func TestOutboxMigrationMarksOldRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testenv.MySQL(t)
	ms, err := mysql.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	// Back to the schema before 006, with a valid and a pending record.
	if _, err := db.Exec("ALTER TABLE participations DROP KEY idx_participations_outbox, DROP COLUMN published"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("DELETE FROM schema_migrations WHERE version = 6"); err != nil {
		t.Fatal(err)
	}
	for i, status := range []string{"valid", "pending", "void"} {
		if _, err := db.Exec(`INSERT INTO participations (token, activity_id, slot, user_id, claim_id, issued_at, status, recorded_at)
			VALUES (?, 1, ?, 'u', 'c', NOW(3), ?, NOW(3))`, fmt.Sprintf("old%051d", i), i+1, status); err != nil {
			t.Fatal(err)
		}
	}
	if err := mysql.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	published := map[string]int{}
	rows, err := db.Query("SELECT status, published FROM participations")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		var p int
		if err := rows.Scan(&s, &p); err != nil {
			t.Fatal(err)
		}
		published[s] = p
	}
	if published["valid"] != 1 || published["pending"] != 0 {
		t.Fatalf("after migration 006: published by status %v, want the valid record published and the pending one not", published)
	}
	if len(ms) == 0 || ms[len(ms)-1].Version < 6 {
		t.Fatalf("migrations end at %d, want 006 among them", ms[len(ms)-1].Version)
	}
}
