package mysql

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"seckill/activity"
)

// inTx runs fn in a transaction, again (up to three times in all) when
// InnoDB chose it as a deadlock's victim: it was rolled back whole. The
// domain's errors fn returns come back as they are; the driver's as
// activity.ErrUnavailable.
func (r *Repository) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	for try := 1; ; try++ {
		err := r.tryTx(ctx, fn)
		var me *gomysql.MySQLError
		if try < 3 && errors.As(err, &me) && me.Number == 1213 {
			continue
		}
		if err != nil && !isDomain(err) {
			return unavailable(err)
		}
		return err
	}
}

func (r *Repository) tryTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := r.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // after a commit it only says ErrTxDone
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// isDomain reports whether err is one of the domain's answers rather than
// a failure of MySQL.
func isDomain(err error) bool {
	for _, e := range []error{activity.ErrNotFound, activity.ErrInvalidState, activity.ErrAlreadyRedeemed,
		activity.ErrExists, activity.ErrInvalid, activity.ErrForbidden} {
		if errors.Is(err, e) {
			return true
		}
	}
	var de *activity.DependencyError
	return errors.As(err, &de)
}

// auditActivity is what the audit log keeps of an activity before and
// after a change.
type auditActivity struct {
	Name         string    `json:"name"`
	Description  string    `json:"description"`
	Stock        int64     `json:"stock"`
	PerUserLimit int64     `json:"perUserLimit"`
	Shards       int       `json:"shards"`
	BeginAt      time.Time `json:"beginAt"`
	EndAt        time.Time `json:"endAt"`
	AutoOpen     bool      `json:"autoOpen"`
	State        string    `json:"state"`
	// DuplicateOf is, in the entry of a create by duplicate, the activity
	// copied.
	DuplicateOf int64 `json:"duplicateOf,omitempty"`
}

func auditOf(a *activity.Activity) auditActivity {
	return auditActivity{Name: a.Name, Description: a.Description, Stock: a.Stock, PerUserLimit: a.PerUserLimit, Shards: a.Shards,
		BeginAt: a.BeginAt, EndAt: a.EndAt, AutoOpen: a.AutoOpen, State: string(a.State), DuplicateOf: a.DuplicateOf}
}

// changeActivity runs one UPDATE of an activity row and, when ctx carries
// an actor, appends its audit entry with the row before and after, in one
// transaction. No row changed is activity.ErrNotFound or ErrInvalidState.
func (r *Repository) changeActivity(ctx context.Context, id int64, action, update string, args ...any) error {
	return r.inTx(ctx, func(tx *sqlx.Tx) error {
		var before activityRow
		err := tx.GetContext(ctx, &before, "SELECT "+activityColumns+" FROM activities WHERE id = ? FOR UPDATE", id)
		if errors.Is(err, sql.ErrNoRows) {
			return activity.ErrNotFound
		}
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, update, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return activity.ErrInvalidState
		}
		if _, ok := activity.ActorOf(ctx); !ok {
			return nil
		}
		var after activityRow
		if err := tx.GetContext(ctx, &after, "SELECT "+activityColumns+" FROM activities WHERE id = ?", id); err != nil {
			return err
		}
		return appendAudit(ctx, tx, action, id, "", auditOf(before.domain()), auditOf(after.domain()))
	})
}

// appendAudit appends the entry of a change in its transaction, when ctx
// carries an actor; before and after are marshalled to JSON (nil: none).
func appendAudit(ctx context.Context, tx *sqlx.Tx, action string, activityID int64, target string, before, after any) error {
	actor, ok := activity.ActorOf(ctx)
	if !ok {
		return nil
	}
	js := func(v any) (sql.NullString, error) {
		if v == nil {
			return sql.NullString{}, nil
		}
		b, err := json.Marshal(v)
		return sql.NullString{String: string(b), Valid: true}, err
	}
	b, err := js(before)
	if err != nil {
		return err
	}
	a, err := js(after)
	if err != nil {
		return err
	}
	id := sql.NullInt64{Int64: activityID, Valid: activityID > 0}
	_, err = tx.ExecContext(ctx, `INSERT INTO audit (at, actor, role, action, activity_id, target, before_json, after_json, request_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, time.Now().UTC().Truncate(time.Millisecond), actor.Name, actor.Role, action, id,
		target, b, a, actor.RequestID)
	return err
}

// AddStaff stores a new staff account, and its audit entry.
func (r *Repository) AddStaff(ctx context.Context, s activity.Staff, tokenHash [32]byte) error {
	return r.inTx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO staff (name, role, token_hash, created_at, created_by) VALUES (?, ?, ?, ?, ?)",
			s.Name, s.Role, tokenHash[:], s.CreatedAt, s.CreatedBy)
		var me *gomysql.MySQLError
		if errors.As(err, &me) && me.Number == 1062 { // duplicate key
			return activity.ErrExists
		}
		if err != nil {
			return err
		}
		return appendAudit(ctx, tx, "staff_add", 0, s.Name, nil, map[string]any{"name": s.Name, "role": s.Role})
	})
}

type staffRow struct {
	Name      string    `db:"name"`
	Role      string    `db:"role"`
	CreatedAt time.Time `db:"created_at"`
	CreatedBy string    `db:"created_by"`
}

func (s staffRow) domain() activity.Staff {
	return activity.Staff{Name: s.Name, Role: activity.Role(s.Role), CreatedAt: s.CreatedAt.UTC(), CreatedBy: s.CreatedBy}
}

// StaffList returns every staff account, by name.
func (r *Repository) StaffList(ctx context.Context) ([]activity.Staff, error) {
	var rows []staffRow
	if err := r.db.SelectContext(ctx, &rows, "SELECT name, role, created_at, created_by FROM staff ORDER BY name"); err != nil {
		return nil, unavailable(err)
	}
	out := make([]activity.Staff, len(rows))
	for i, row := range rows {
		out[i] = row.domain()
	}
	return out, nil
}

// RemoveStaff deletes a staff account, and appends its audit entry.
func (r *Repository) RemoveStaff(ctx context.Context, name string) error {
	return r.inTx(ctx, func(tx *sqlx.Tx) error {
		var row staffRow
		err := tx.GetContext(ctx, &row, "SELECT name, role, created_at, created_by FROM staff WHERE name = ? FOR UPDATE", name)
		if errors.Is(err, sql.ErrNoRows) {
			return activity.ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM staff WHERE name = ?", name); err != nil {
			return err
		}
		return appendAudit(ctx, tx, "staff_remove", 0, name, map[string]any{"name": row.Name, "role": row.Role}, nil)
	})
}

// StaffByToken returns the staff account of a credential's hash.
func (r *Repository) StaffByToken(ctx context.Context, tokenHash [32]byte) (*activity.Staff, error) {
	var row staffRow
	err := r.db.GetContext(ctx, &row, "SELECT name, role, created_at, created_by FROM staff WHERE token_hash = ?", tokenHash[:])
	if errors.Is(err, sql.ErrNoRows) {
		return nil, activity.ErrNotFound
	}
	if err != nil {
		return nil, unavailable(err)
	}
	s := row.domain()
	return &s, nil
}

type auditRow struct {
	ID         int64          `db:"id"`
	At         time.Time      `db:"at"`
	Actor      string         `db:"actor"`
	Role       string         `db:"role"`
	Action     string         `db:"action"`
	ActivityID sql.NullInt64  `db:"activity_id"`
	Target     string         `db:"target"`
	Before     sql.NullString `db:"before_json"`
	After      sql.NullString `db:"after_json"`
	RequestID  string         `db:"request_id"`
}

// Audit returns audit entries newest first, by activity or actor when the
// filter says so, older than f.Before when it is not zero.
func (r *Repository) Audit(ctx context.Context, f activity.AuditFilter) ([]activity.AuditEntry, error) {
	var where []string
	var args []any
	if f.ActivityID > 0 {
		where, args = append(where, "activity_id = ?"), append(args, f.ActivityID)
	}
	if f.Actor != "" {
		where, args = append(where, "actor = ?"), append(args, f.Actor)
	}
	if f.Before > 0 {
		where, args = append(where, "id < ?"), append(args, f.Before)
	}
	q := "SELECT id, at, actor, role, action, activity_id, target, before_json, after_json, request_id FROM audit"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	var rows []auditRow
	if err := r.db.SelectContext(ctx, &rows, q, append(args, f.Limit)...); err != nil {
		return nil, unavailable(err)
	}
	out := make([]activity.AuditEntry, len(rows))
	for i, e := range rows {
		out[i] = activity.AuditEntry{ID: e.ID, At: e.At.UTC(), Actor: e.Actor, Role: activity.Role(e.Role), Action: e.Action,
			ActivityID: e.ActivityID.Int64, Target: e.Target, Before: e.Before.String, After: e.After.String, RequestID: e.RequestID}
	}
	return out, nil
}
