package mysql_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"seckill/activity"
	"seckill/activity/mysql"
	"seckill/internal/testenv"
)

type migrationRow struct {
	Version   int       `db:"version"`
	Name      string    `db:"name"`
	AppliedAt time.Time `db:"applied_at"`
}

func appliedMigrations(t *testing.T, db *sqlx.DB) []migrationRow {
	t.Helper()
	var rows []migrationRow
	if err := db.Select(&rows, "SELECT version, name, applied_at FROM schema_migrations ORDER BY version"); err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	return rows
}

func open(t *testing.T, dsn string) *sqlx.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := mysql.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMigrations(t *testing.T) {
	ms, err := mysql.Migrations()
	if err != nil {
		t.Fatalf("Migrations: %v", err)
	}
	if len(ms) == 0 {
		t.Fatal("no migrations embedded")
	}
	for i, m := range ms {
		if i > 0 && m.Version <= ms[i-1].Version {
			t.Errorf("migration %s (version %d) comes after version %d: not unique and increasing", m.Name, m.Version, ms[i-1].Version)
		}
		if prefix := fmt.Sprintf("%03d_", m.Version); !strings.HasPrefix(m.Name, prefix) || !strings.HasSuffix(m.Name, ".sql") {
			t.Errorf("migration name %q, want %sname.sql", m.Name, prefix)
		}
		if len(m.Statements) == 0 {
			t.Errorf("migration %s has no statements", m.Name)
		}
		for _, s := range m.Statements {
			if strings.HasPrefix(strings.TrimSpace(s), "--") || strings.HasSuffix(s, ";") {
				t.Errorf("migration %s: statement not split cleanly: %q", m.Name, s)
			}
		}
	}
	if ms[0].Version != 1 {
		t.Errorf("first migration is version %d, want 1", ms[0].Version)
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	ms, err := mysql.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	dsn := testenv.DatabaseDSN(t)

	db := open(t, dsn)
	first := appliedMigrations(t, db)
	t.Run("CreatesDatabaseAndAppliesEveryMigration", func(t *testing.T) {
		if len(first) != len(ms) {
			t.Fatalf("schema_migrations has %d rows, want %d", len(first), len(ms))
		}
		for i, m := range ms {
			if first[i].Version != m.Version || first[i].Name != m.Name {
				t.Errorf("row %d = %d %s, want %d %s", i, first[i].Version, first[i].Name, m.Version, m.Name)
			}
		}
		for _, table := range []string{"activities", "participations", "settings"} {
			var n int
			if err := db.Get(&n, "SELECT COUNT(*) FROM "+table); err != nil {
				t.Errorf("table %s: %v", table, err)
			}
		}
	})

	t.Run("RestartIsANoOp", func(t *testing.T) {
		again := open(t, dsn)
		second := appliedMigrations(t, again)
		if len(second) != len(first) {
			t.Fatalf("after a restart schema_migrations has %d rows, want %d", len(second), len(first))
		}
		for i := range first {
			if !second[i].AppliedAt.Equal(first[i].AppliedAt) || second[i].Version != first[i].Version {
				t.Errorf("row %d changed on restart: %+v, was %+v", i, second[i], first[i])
			}
		}
		if err := mysql.Migrate(context.Background(), again); err != nil {
			t.Fatalf("Migrate on a migrated database: %v", err)
		}
		if n := len(appliedMigrations(t, again)); n != len(first) {
			t.Fatalf("Migrate again left %d rows, want %d", n, len(first))
		}
	})
}

func TestOpenRejectsBadDSN(t *testing.T) {
	tests := []struct {
		name, dsn, want string
	}{
		{"NoDatabaseName", "root@tcp(127.0.0.1:3306)/", "names no database"},
		{"Unparsable", "root@tcp(127.0.0.1:3306", "DSN"},
		{"NothingListening", "root@tcp(127.0.0.1:1)/seckill_never?timeout=2s", "127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			db, err := mysql.Open(ctx, tt.dsn)
			if err == nil {
				db.Close()
				t.Fatalf("Open(%q) succeeded", tt.dsn)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(strings.ToLower(err.Error()), "mysql") {
				t.Fatalf("Open(%q) = %v, want an error mentioning mysql and %q", tt.dsn, err, tt.want)
			}
		})
	}
}

func TestTokenSecret(t *testing.T) {
	t.Parallel()
	db := testenv.MySQL(t)
	ctx := context.Background()
	a, err := mysql.TokenSecret(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	b, err := mysql.TokenSecret(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("LongEnough", func(t *testing.T) {
		if len(a) < activity.MinSecretLen {
			t.Fatalf("secret is %d bytes, want at least %d", len(a), activity.MinSecretLen)
		}
		if bytes.Equal(a, make([]byte, len(a))) {
			t.Fatal("secret is all zero bytes")
		}
	})
	t.Run("StableAcrossCalls", func(t *testing.T) {
		if !bytes.Equal(a, b) {
			t.Fatalf("TokenSecret changed between calls: %x then %x", a, b)
		}
	})
	t.Run("DiffersPerDatabase", func(t *testing.T) {
		c, err := mysql.TokenSecret(ctx, testenv.MySQL(t))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(a, c) {
			t.Fatal("two databases got the same secret: it is not random")
		}
	})
}

// participation returns a participation of a draft activity stored in repo,
// with a token signed like a real one.
func participation(t *testing.T, repo *mysql.Repository, db *sqlx.DB, slot int64, user string) activity.Participation {
	t.Helper()
	ctx := context.Background()
	a := &activity.Activity{Name: "repo test", Stock: 10, PerUserLimit: 1, State: activity.StateOpen, Surplus: 10,
		BeginAt: time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond), EndAt: time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)}
	if err := repo.CreateActivity(ctx, a); err != nil {
		t.Fatalf("CreateActivity: %v", err)
	}
	secret, err := mysql.TokenSecret(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := activity.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	var n [12]byte
	copy(n[:], user)
	return activity.Participation{
		Token:      signer.Sign(a.ID, slot, n),
		ActivityID: a.ID,
		Slot:       slot,
		UserID:     user,
		ClaimID:    "AAAAAAAAAAAAAAAA",
		Epoch:      1,
		IssuedAt:   time.Now().UTC().Truncate(time.Millisecond),
	}
}

// status returns the status of a token's record, failing the test when
// there is not exactly one row for it.
func status(t *testing.T, repo *mysql.Repository, db *sqlx.DB, token string) activity.RecordStatus {
	t.Helper()
	var rows int
	if err := db.Get(&rows, "SELECT COUNT(*) FROM participations WHERE token = ?", token); err != nil || rows != 1 {
		t.Fatalf("%d rows for the token (%v), want 1", rows, err)
	}
	p, err := repo.Participation(context.Background(), token)
	if err != nil {
		t.Fatalf("Participation: %v", err)
	}
	return p.Status
}

func TestRepositoryRecord(t *testing.T) {
	t.Parallel()
	db := testenv.MySQL(t)
	repo := mysql.NewRepository(db)
	ctx := context.Background()

	record := func(t *testing.T, p activity.Participation) {
		t.Helper()
		if err := repo.Record(ctx, p); err != nil {
			t.Fatalf("Record: %v", err)
		}
	}
	settle := func(t *testing.T, valid, void []activity.Participation) {
		t.Helper()
		if err := repo.SettleParticipations(ctx, valid, void); err != nil {
			t.Fatalf("SettleParticipations: %v", err)
		}
	}
	// recorded checks the activity's recorded count against a count of its
	// valid rows.
	recorded := func(t *testing.T, id, want int64) {
		t.Helper()
		if n, err := repo.CountRecorded(ctx, id); err != nil || n != want {
			t.Fatalf("CountRecorded = %d, %v; want %d", n, err, want)
		}
		if a, err := repo.Activity(ctx, id); err != nil || a.Recorded != want {
			t.Fatalf("the activity's recorded count %d (%v), want %d", a.Recorded, err, want)
		}
	}

	t.Run("RecordedTwiceIsOneRowAndCountsOnce", func(t *testing.T) {
		p := participation(t, repo, db, 1, "alice")
		record(t, p)
		record(t, p)
		got, err := repo.Participation(ctx, p.Token)
		if err != nil {
			t.Fatalf("Participation: %v", err)
		}
		if !got.IssuedAt.Equal(p.IssuedAt) {
			t.Errorf("IssuedAt = %v, want %v", got.IssuedAt, p.IssuedAt)
		}
		want := p
		want.Status = activity.RecordPending
		got.IssuedAt = want.IssuedAt
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("Participation = %+v, want %+v", *got, want)
		}
		recorded(t, p.ActivityID, 0)
		settle(t, []activity.Participation{p}, nil)
		record(t, p)
		if st := status(t, repo, db, p.Token); st != activity.RecordValid {
			t.Fatalf("status %q after settle and a redelivered record, want valid", st)
		}
		recorded(t, p.ActivityID, 1)
	})

	t.Run("BatchWithDuplicatesIsOneRow", func(t *testing.T) {
		p := participation(t, repo, db, 1, "dave")
		if err := repo.RecordBatch(ctx, []activity.Participation{p, p, p}); err != nil {
			t.Fatalf("RecordBatch: %v", err)
		}
		if st := status(t, repo, db, p.Token); st != activity.RecordPending {
			t.Fatalf("status %q, want pending", st)
		}
	})

	t.Run("VoidThenRecordStaysVoid", func(t *testing.T) {
		p := participation(t, repo, db, 2, "bob")
		record(t, p)
		settle(t, nil, []activity.Participation{p})
		record(t, p)
		if st := status(t, repo, db, p.Token); st != activity.RecordVoid {
			t.Fatalf("status %q after void and a redelivered record, want void", st)
		}
		recorded(t, p.ActivityID, 0)
	})

	t.Run("SettledRecordIsNotSettledAgain", func(t *testing.T) {
		valid := participation(t, repo, db, 3, "carol")
		void := participation(t, repo, db, 4, "erin")
		record(t, valid)
		record(t, void)
		settle(t, []activity.Participation{valid}, []activity.Participation{void})
		settle(t, []activity.Participation{void}, []activity.Participation{valid})
		if st := status(t, repo, db, valid.Token); st != activity.RecordValid {
			t.Errorf("valid record became %q", st)
		}
		if st := status(t, repo, db, void.Token); st != activity.RecordVoid {
			t.Errorf("void record became %q", st)
		}
		recorded(t, valid.ActivityID, 1)
		recorded(t, void.ActivityID, 0)
	})

	t.Run("RecordedCountsEachValidRecordOnce", func(t *testing.T) {
		a := participation(t, repo, db, 1, "ivan")
		var batch []activity.Participation
		for i, u := range []string{"v1", "v2", "v3", "p1", "x1"} {
			p := a
			p.Token = participation(t, repo, db, int64(i+1), u).Token
			p.UserID = u
			switch u[0] {
			case 'v':
				p.Status = activity.RecordValid
			case 'x':
				p.Status = activity.RecordVoid
			}
			batch = append(batch, p)
		}
		pendingFirst := batch[1]
		pendingFirst.Status = ""
		record(t, pendingFirst) // v2 arrives first as pending
		for range 2 {           // then the whole batch, twice
			if err := repo.RecordBatch(ctx, batch); err != nil {
				t.Fatalf("RecordBatch: %v", err)
			}
		}
		recorded(t, a.ActivityID, 3)
		settle(t, []activity.Participation{batch[3], batch[3]}, nil)
		settle(t, []activity.Participation{batch[3]}, nil)
		recorded(t, a.ActivityID, 4)
	})

	t.Run("PendingListsOnlyPending", func(t *testing.T) {
		open := participation(t, repo, db, 5, "frank")
		done := participation(t, repo, db, 6, "grace")
		record(t, open)
		record(t, done)
		settle(t, []activity.Participation{done}, nil)
		pending, err := repo.PendingParticipations(ctx, 1000)
		if err != nil {
			t.Fatalf("PendingParticipations: %v", err)
		}
		var found bool
		for _, p := range pending {
			if p.Status != activity.RecordPending || p.Token == done.Token {
				t.Errorf("PendingParticipations returned a %q record %s", p.Status, p.Token)
			}
			found = found || p.Token == open.Token
		}
		if !found {
			t.Errorf("PendingParticipations misses the pending record %s", open.Token)
		}
	})

	t.Run("UnknownTokenIsNotFound", func(t *testing.T) {
		if _, err := repo.Participation(ctx, strings.Repeat("A", 54)); !errors.Is(err, activity.ErrNotFound) {
			t.Fatalf("Participation of an unknown token = %v, want ErrNotFound", err)
		}
	})
}
