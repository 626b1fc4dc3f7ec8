package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"seckill/activity"
)

// Repository implements activity.Repository and activity.Recorder on MySQL.
type Repository struct {
	db  *sqlx.DB
	now func() time.Time
}

// NewRepository returns a Repository on db.
func NewRepository(db *sqlx.DB) *Repository {
	return &Repository{db: db, now: time.Now}
}

type activityRow struct {
	ID           int64        `db:"id"`
	Name         string       `db:"name"`
	Description  string       `db:"description"`
	Stock        int64        `db:"stock"`
	PerUserLimit int64        `db:"per_user_limit"`
	Shards       int          `db:"shards"`
	BeginAt      time.Time    `db:"begin_at"`
	EndAt        time.Time    `db:"end_at"`
	AutoOpen     bool         `db:"auto_open"`
	CreatedBy    string       `db:"created_by"`
	UpdatedBy    string       `db:"updated_by"`
	State        string       `db:"state"`
	Surplus      int64        `db:"surplus"`
	Recorded     int64        `db:"recorded"`
	Epoch        int64        `db:"epoch"`
	ShardEpochs  string       `db:"shard_epochs"`
	ReconciledAt sql.NullTime `db:"reconciled_at"`
	CreatedAt    time.Time    `db:"created_at"`
	UpdatedAt    time.Time    `db:"updated_at"`
	OpenedAt     sql.NullTime `db:"opened_at"`
	ClosedAt     sql.NullTime `db:"closed_at"`
	summaryRow
}

// summaryRow is the summary of a sale in its activity's row.
type summaryRow struct {
	At           sql.NullTime `db:"summary_at"`
	Winners      int64        `db:"summary_winners"`
	SoldOut      int64        `db:"summary_sold_out"`
	LimitReached int64        `db:"summary_limit_reached"`
	Busy         int64        `db:"summary_busy"`
	Peak         int64        `db:"summary_peak"`
	PeakAt       sql.NullTime `db:"summary_peak_at"`
}

const activityColumns = `id, name, description, stock, per_user_limit, shards, begin_at, end_at, auto_open, created_by, updated_by, state,
	surplus, recorded, epoch, shard_epochs, reconciled_at, created_at, updated_at, opened_at, closed_at,
	summary_at, summary_winners, summary_sold_out, summary_limit_reached, summary_busy, summary_peak, summary_peak_at`

// timeOf returns the time of t, or nil.
func timeOf(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

func (r activityRow) domain() *activity.Activity {
	a := &activity.Activity{
		ID: r.ID, Name: r.Name, Description: r.Description, Stock: r.Stock, PerUserLimit: r.PerUserLimit, Shards: r.Shards,
		BeginAt: r.BeginAt.UTC(), EndAt: r.EndAt.UTC(), AutoOpen: r.AutoOpen, CreatedBy: r.CreatedBy, UpdatedBy: r.UpdatedBy, State: activity.State(r.State), Surplus: r.Surplus, Recorded: r.Recorded, Epoch: r.Epoch,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), ShardEpochs: activity.ParseSeqs(r.ShardEpochs),
	}
	if len(a.ShardEpochs) != a.Shards {
		a.ShardEpochs = nil
	}
	if r.ReconciledAt.Valid {
		t := r.ReconciledAt.Time.UTC()
		a.ReconciledAt = &t
	}
	a.OpenedAt, a.ClosedAt = timeOf(r.OpenedAt), timeOf(r.ClosedAt)
	if r.summaryRow.At.Valid {
		m := &activity.Summary{Winners: r.Winners, PeakJoins: r.Peak, PeakAt: timeOf(r.PeakAt), At: r.summaryRow.At.Time.UTC(),
			TurnedAway: activity.TurnedAway{SoldOut: r.SoldOut, LimitReached: r.LimitReached, Busy: r.Busy}}
		m.StartedAt, m.EndedAt = a.Span()
		a.Summary = m
	}
	return a
}

// SetSummary writes the summary of a closed activity (its times are its
// row's); an activity in another state is left alone.
func (r *Repository) SetSummary(ctx context.Context, id int64, m activity.Summary) error {
	var peakAt sql.NullTime
	if m.PeakAt != nil {
		peakAt = sql.NullTime{Time: m.PeakAt.UTC(), Valid: true}
	}
	_, err := r.exec(ctx, `UPDATE activities SET summary_at = ?, summary_winners = ?, summary_sold_out = ?,
		summary_limit_reached = ?, summary_busy = ?, summary_peak = ?, summary_peak_at = ? WHERE id = ? AND state = 'closed'`,
		m.At, m.Winners, m.TurnedAway.SoldOut, m.TurnedAway.LimitReached, m.TurnedAway.Busy, m.PeakJoins, peakAt, id)
	if err != nil {
		return unavailable(err)
	}
	return nil
}

func (r *Repository) stamp() time.Time { return r.now().UTC().Truncate(time.Millisecond) }

// exec runs one statement of its own (autocommitted), again when InnoDB
// chose it as the victim of a deadlock: it was rolled back whole, so a
// second run is the first that counts. An admin's statement on an
// activity row can deadlock with a create's insert into the same
// secondary index.
func (r *Repository) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	for try := 1; ; try++ {
		res, err := r.db.ExecContext(ctx, q, args...)
		var me *gomysql.MySQLError
		if try == 3 || !errors.As(err, &me) || me.Number != 1213 {
			return res, err
		}
	}
}

// CreateActivity stores a new activity and sets its ID and timestamps.
func (r *Repository) CreateActivity(ctx context.Context, a *activity.Activity) error {
	now := r.stamp()
	return r.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO activities
		(name, description, stock, per_user_limit, shards, begin_at, end_at, auto_open, created_by, updated_by, state, surplus, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.Name, a.Description, a.Stock, a.PerUserLimit, a.Shards, a.BeginAt, a.EndAt, a.AutoOpen, a.CreatedBy, a.UpdatedBy, a.State, a.Surplus, now, now)
		if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		a.ID, a.CreatedAt, a.UpdatedAt = id, now, now
		return appendAudit(ctx, tx, "create", id, "", nil, auditOf(a))
	})
}

// Activity returns one activity, or activity.ErrNotFound.
func (r *Repository) Activity(ctx context.Context, id int64) (*activity.Activity, error) {
	var row activityRow
	err := r.db.GetContext(ctx, &row, "SELECT "+activityColumns+" FROM activities WHERE id = ?", id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, activity.ErrNotFound
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return row.domain(), nil
}

// Activities lists the activities f selects, in its order.
func (r *Repository) Activities(ctx context.Context, f activity.ListFilter) ([]*activity.Activity, error) {
	where, args := listWhere(f)
	order := "id DESC"
	switch f.Sort {
	case activity.SortBeginAt:
		order = "begin_at, id"
	case activity.SortBeginAtDesc:
		order = "begin_at DESC, id DESC"
	}
	return r.activities(ctx, "SELECT "+activityColumns+" FROM activities"+where+" ORDER BY "+order+" LIMIT ? OFFSET ?",
		append(args, f.Limit, f.Offset)...)
}

// CountActivities counts the activities f selects.
func (r *Repository) CountActivities(ctx context.Context, f activity.ListFilter) (int64, error) {
	where, args := listWhere(f)
	var n int64
	if err := r.db.GetContext(ctx, &n, "SELECT COUNT(*) FROM activities"+where, args...); err != nil {
		return 0, unavailable(err)
	}
	return n, nil
}

// listWhere is the WHERE clause of a listing, and its arguments. The name
// is compared case-insensitively, its query's % and _ taken literally.
func listWhere(f activity.ListFilter) (string, []any) {
	var conds []string
	var args []any
	if f.State != "" {
		conds, args = append(conds, "state = ?"), append(args, f.State)
	}
	if f.Query != "" {
		conds = append(conds, "name COLLATE utf8mb4_general_ci LIKE ? ESCAPE '!'")
		args = append(args, "%"+likeEscaper.Replace(f.Query)+"%")
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// likeEscaper makes the wildcards of LIKE, and its escape character, stand
// for themselves.
var likeEscaper = strings.NewReplacer("!", "!!", "%", "!%", "_", "!_")

// activities returns the activities a SELECT of activityColumns picks.
func (r *Repository) activities(ctx context.Context, q string, args ...any) ([]*activity.Activity, error) {
	var rows []activityRow
	if err := r.db.SelectContext(ctx, &rows, q, args...); err != nil {
		return nil, unavailable(err)
	}
	out := make([]*activity.Activity, len(rows))
	for i, row := range rows {
		out[i] = row.domain()
	}
	return out, nil
}

// UpdateActivity writes a's editable fields if it is still in state from.
func (r *Repository) UpdateActivity(ctx context.Context, a *activity.Activity, from activity.State) error {
	return r.changeActivity(ctx, a.ID, "edit", `UPDATE activities SET name = ?, description = ?, stock = ?,
		per_user_limit = ?, shards = ?, begin_at = ?, end_at = ?, auto_open = ?, surplus = ?, updated_by = ?, updated_at = ? WHERE id = ? AND state = ?`,
		a.Name, a.Description, a.Stock, a.PerUserLimit, a.Shards, a.BeginAt, a.EndAt, a.AutoOpen, a.Surplus, a.UpdatedBy, r.stamp(), a.ID, from)
}

// SetState moves an activity from one state to another, atomically.
func (r *Repository) SetState(ctx context.Context, id int64, from, to activity.State) error {
	now := r.stamp()
	return r.changeActivity(ctx, id, stateAction(from, to), `UPDATE activities SET state = ?, updated_at = ?,
		opened_at = IF(? = 'open', ?, opened_at), closed_at = IF(? = 'closed', ?, closed_at) WHERE id = ? AND state = ?`,
		to, now, to, now, to, now, id, from)
}

// stateAction names a move of state in the audit log: the admin action
// that makes it, or "open_undone" for an open whose preheat failed.
func stateAction(from, to activity.State) string {
	for _, a := range []activity.Action{activity.ActionApprove, activity.ActionRefuse, activity.ActionOpen, activity.ActionClose,
		activity.ActionDraft} {
		if next, err := from.Next(a); err == nil && next == to {
			return string(a)
		}
	}
	return string(from) + "_undone"
}

type participationRow struct {
	Token      string         `db:"token"`
	ActivityID int64          `db:"activity_id"`
	Slot       int64          `db:"slot"`
	UserID     string         `db:"user_id"`
	ClaimID    string         `db:"claim_id"`
	Epoch      int64          `db:"epoch"`
	Seq        int64          `db:"claim_seq"`
	Held       sql.NullString `db:"held"`
	IdemKey    string         `db:"idempotency_key"`
	IssuedAt   time.Time      `db:"issued_at"`
	Status     string         `db:"status"`
	RedeemedAt sql.NullTime   `db:"redeemed_at"`
}

const participationColumns = "token, activity_id, slot, user_id, claim_id, epoch, claim_seq, held, idempotency_key, issued_at, status, redeemed_at"

func (r participationRow) domain() activity.Participation {
	p := activity.Participation{Token: r.Token, ActivityID: r.ActivityID, Slot: r.Slot, UserID: r.UserID,
		ClaimID: r.ClaimID, Epoch: r.Epoch, Seq: r.Seq, Held: activity.ParseSeqs(r.Held.String), IdempotencyKey: r.IdemKey,
		IssuedAt: r.IssuedAt.UTC(), Status: activity.RecordStatus(r.Status)}
	if r.RedeemedAt.Valid {
		t := r.RedeemedAt.Time.UTC()
		p.RedeemedAt = &t
	}
	return p
}

// Participation returns the participation record of a token, whatever its
// status, or activity.ErrNotFound.
func (r *Repository) Participation(ctx context.Context, token string) (*activity.Participation, error) {
	var row participationRow
	err := r.db.GetContext(ctx, &row, "SELECT "+participationColumns+" FROM participations WHERE token = ?", token)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, activity.ErrNotFound
	}
	if err != nil {
		return nil, unavailable(err)
	}
	p := row.domain()
	return &p, nil
}

// UserParticipations returns the valid participation records of a user in
// an activity, oldest first.
func (r *Repository) UserParticipations(ctx context.Context, activityID int64, userID string) ([]activity.Participation, error) {
	return r.participations(ctx, `WHERE activity_id = ? AND user_id = ? AND status = 'valid'
		ORDER BY issued_at, token LIMIT ?`, activityID, userID, activity.MaxPerUserLimit)
}

// participations returns the records that the rest of a SELECT, from its
// WHERE on, picks.
func (r *Repository) participations(ctx context.Context, where string, args ...any) ([]activity.Participation, error) {
	var rows []participationRow
	err := r.db.SelectContext(ctx, &rows, "SELECT "+participationColumns+" FROM participations "+where, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]activity.Participation, len(rows))
	for i, row := range rows {
		out[i] = row.domain()
	}
	return out, nil
}

// CountRecorded returns the number of valid participation records of an
// activity.
func (r *Repository) CountRecorded(ctx context.Context, activityID int64) (int64, error) {
	var n int64
	err := r.db.GetContext(ctx, &n,
		"SELECT COUNT(*) FROM participations WHERE activity_id = ? AND status = 'valid'", activityID)
	if err != nil {
		return 0, unavailable(err)
	}
	return n, nil
}

// Record stores a participation with its status (pending when it has
// none). It implements activity.Recorder for running without Kafka, and is
// what the consumer does with each event.
func (r *Repository) Record(ctx context.Context, p activity.Participation) error {
	return r.RecordBatch(ctx, []activity.Participation{p})
}

// RecordBatch stores participations, each with its Status (pending when
// empty), in one transaction. A token recorded before keeps its row, so a
// redelivered event changes nothing; a pending row takes the status of a
// redelivery that knows better, and a settled row stays settled. Each
// activity's recorded count grows by the records that became valid.
func (r *Repository) RecordBatch(ctx context.Context, ps []activity.Participation) error {
	if len(ps) == 0 {
		return nil
	}
	// Rows are locked in token order, then activity rows in id order, here
	// and in SettleParticipations, so the consumer's batches and the job's
	// settling do not deadlock on each other (a rebuild, which locks the
	// activity row first, may still: the loser is retried).
	ps = slices.Clone(ps)
	slices.SortFunc(ps, func(a, b activity.Participation) int { return strings.Compare(a.Token, b.Token) })
	if err := r.recordFresh(ctx, ps); !errors.Is(err, errRecordedBefore) {
		return err
	}
	// Read committed takes no gap locks, so the job settling at the same
	// time cannot deadlock with it.
	tx, err := r.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return unavailable(err)
	}
	defer func() { _ = tx.Rollback() }() // after a commit it only says ErrTxDone
	now := r.stamp()
	byActivity := map[int64]map[activity.RecordStatus][]activity.Participation{}
	var ids []int64
	for _, p := range ps {
		if p.Status == "" {
			p.Status = activity.RecordPending
		}
		if byActivity[p.ActivityID] == nil {
			byActivity[p.ActivityID] = map[activity.RecordStatus][]activity.Participation{}
			ids = append(ids, p.ActivityID)
		}
		byActivity[p.ActivityID][p.Status] = append(byActivity[p.ActivityID][p.Status], p)
	}
	slices.Sort(ids)
	// Every row goes in as pending, and the settled ones then move from
	// pending: each row makes that move once, in whichever transaction gets
	// to it, so the count cannot go wrong whatever runs at the same time.
	if err := insertRecords(ctx, tx, ps, now); err != nil {
		return err
	}
	added := make([]int64, len(ids))
	for i, id := range ids {
		groups := byActivity[id]
		n, err := settleTokens(ctx, tx, activity.RecordValid, tokensOf(groups[activity.RecordValid]))
		if err != nil {
			return err
		}
		if _, err := settleTokens(ctx, tx, activity.RecordVoid, tokensOf(groups[activity.RecordVoid])); err != nil {
			return err
		}
		added[i] = n
	}
	for i, id := range ids {
		if err := addRecorded(ctx, tx, id, added[i]); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return unavailable(err)
	}
	return nil
}

// errRecordedBefore: a record of the batch is in MySQL already.
var errRecordedBefore = errors.New("a record of the batch is there already")

// recordFresh is RecordBatch for a batch none of whose records is there yet,
// as is every batch but a redelivered one: the rows go in with their
// statuses, in one statement, and each activity's count of valid records
// grows by its valid rows, in one transaction. A record that is there
// already (a redelivery, or another consumer writing it at the same time,
// whose insert this one waits for, and which commits) fails the whole
// statement with a duplicate key: then nothing is written and it returns
// errRecordedBefore, and the caller writes the batch row by row. Three such
// inserts of one record at once, the first rolled back, can deadlock two
// (InnoDB's shared lock on a duplicate): the loser's batch is retried, like
// a rebuild's. Settling a row in the statement that makes it, instead of
// inserting it pending and moving it, writes each of the status's indexes
// once instead of twice.
func (r *Repository) recordFresh(ctx context.Context, ps []activity.Participation) error {
	tx, err := r.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted}) // as RecordBatch's
	if err != nil {
		return unavailable(err)
	}
	defer func() { _ = tx.Rollback() }() // after a commit it only says ErrTxDone
	now := r.stamp()
	rows := make([]recordRow, len(ps))
	valid := map[int64]int64{}
	var ids []int64
	for i, p := range ps {
		status := p.Status
		if status == "" {
			status = activity.RecordPending
		}
		rows[i] = newRecordRow(p, status, now)
		if _, seen := valid[p.ActivityID]; !seen {
			ids = append(ids, p.ActivityID)
			valid[p.ActivityID] = 0
		}
		if status == activity.RecordValid {
			valid[p.ActivityID]++
		}
	}
	if _, err := tx.NamedExecContext(ctx, insertFreshQuery, rows); err != nil {
		var me *gomysql.MySQLError
		if errors.As(err, &me) && me.Number == erDupEntry {
			return errRecordedBefore
		}
		return unavailable(err)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if err := addRecorded(ctx, tx, id, valid[id]); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return unavailable(err)
	}
	return nil
}

// erDupEntry is MySQL's and MariaDB's error for a duplicate key
// (ER_DUP_ENTRY).
const erDupEntry = 1062

// recordRow is a participation as RecordBatch inserts it: with its status
// when none of its batch is there yet (recordFresh), else pending until it
// is settled.
type recordRow struct {
	participationRow
	RecordedAt time.Time `db:"recorded_at"`
}

const recordColumns = participationColumns + ", recorded_at"

// insertRecordsQuery inserts a slice of recordRows in one statement: sqlx's
// NamedExec repeats the VALUES tuple once per row and keeps the ON DUPLICATE
// KEY tail (v1.4.0, named.go fixBound). The tail holds no named parameter,
// which would be bound once, not per row. Only a duplicate token is absorbed;
// a value that does not fit fails.
var insertRecordsQuery = insertFreshQuery + " ON DUPLICATE KEY UPDATE token = token"

// insertFreshQuery inserts a slice of recordRows in one statement, failing
// on a duplicate token.
var insertFreshQuery = "INSERT INTO participations (" + recordColumns + ") VALUES (" + namedParams(recordColumns) + ")"

// namedParams returns ":a, :b" for the columns "a, b".
func namedParams(columns string) string {
	names := strings.Split(columns, ",")
	for i, n := range names {
		names[i] = ":" + strings.TrimSpace(n)
	}
	return strings.Join(names, ", ")
}

// insertRecords inserts, as pending, the rows that are not there yet, in
// one statement.
func insertRecords(ctx context.Context, tx *sqlx.Tx, ps []activity.Participation, now time.Time) error {
	rows := make([]recordRow, len(ps))
	for i, p := range ps {
		rows[i] = newRecordRow(p, activity.RecordPending, now)
	}
	if _, err := tx.NamedExecContext(ctx, insertRecordsQuery, rows); err != nil {
		return unavailable(err)
	}
	return nil
}

func newRecordRow(p activity.Participation, status activity.RecordStatus, now time.Time) recordRow {
	return recordRow{participationRow{Token: p.Token, ActivityID: p.ActivityID, Slot: p.Slot, UserID: p.UserID,
		ClaimID: p.ClaimID, Epoch: max(p.Epoch, 1), Seq: p.Seq, Held: sql.NullString{String: activity.FormatSeqs(p.Held), Valid: true},
		IdemKey: p.IdempotencyKey, IssuedAt: p.IssuedAt, Status: string(status)}, now}
}

func tokensOf(ps []activity.Participation) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Token
	}
	return out
}

// addRecorded adds n to an activity's count of valid records.
func addRecorded(ctx context.Context, tx *sqlx.Tx, id, n int64) error {
	if n == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, "UPDATE activities SET recorded = recorded + ? WHERE id = ?", n, id); err != nil {
		return unavailable(err)
	}
	return nil
}

// HasPending reports whether an activity has records not settled yet.
func (r *Repository) HasPending(ctx context.Context, id int64) (bool, error) {
	var n int
	err := r.db.GetContext(ctx, &n,
		"SELECT COUNT(*) FROM (SELECT 1 FROM participations WHERE activity_id = ? AND status = 'pending' LIMIT 1) p", id)
	if err != nil {
		return false, unavailable(err)
	}
	return n > 0, nil
}

// PendingParticipations returns up to limit records not settled yet, oldest
// first.
func (r *Repository) PendingParticipations(ctx context.Context, limit int) ([]activity.Participation, error) {
	return r.participations(ctx, "WHERE status = 'pending' ORDER BY recorded_at LIMIT ?", limit)
}

// SettleParticipations marks pending records valid or void, in one
// transaction, and counts the valid ones in their activity's recorded
// count.
func (r *Repository) SettleParticipations(ctx context.Context, valid, void []activity.Participation) error {
	// Read committed takes no gap locks, so the consumer's inserts running
	// at the same time cannot deadlock with it.
	tx, err := r.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return unavailable(err)
	}
	defer func() { _ = tx.Rollback() }() // after a commit it only says ErrTxDone
	// Every row first, in token order, then the activity rows in id order:
	// the order RecordBatch locks in.
	all := append(tokensOf(valid), tokensOf(void)...)
	slices.Sort(all)
	for part := range slices.Chunk(all, 1000) {
		q, args, err := sqlx.In("SELECT token FROM participations WHERE token IN (?) ORDER BY token FOR UPDATE", part)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return unavailable(err)
		}
	}
	if _, err := settleTokens(ctx, tx, activity.RecordVoid, tokensOf(void)); err != nil {
		return err
	}
	byActivity := map[int64][]string{}
	var ids []int64
	for _, p := range valid {
		if byActivity[p.ActivityID] == nil {
			ids = append(ids, p.ActivityID)
		}
		byActivity[p.ActivityID] = append(byActivity[p.ActivityID], p.Token)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if err := settle(ctx, tx, id, byActivity[id], nil); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return unavailable(err)
	}
	return nil
}

// settle marks pending records of one activity valid or void, and counts
// the valid ones.
func settle(ctx context.Context, tx *sqlx.Tx, id int64, valid, void []string) error {
	n, err := settleTokens(ctx, tx, activity.RecordValid, valid)
	if err != nil {
		return err
	}
	if _, err := settleTokens(ctx, tx, activity.RecordVoid, void); err != nil {
		return err
	}
	return addRecorded(ctx, tx, id, n)
}

// settleTokens gives pending records a status, a thousand tokens a
// statement, and returns how many it changed.
func settleTokens(ctx context.Context, tx *sqlx.Tx, status activity.RecordStatus, tokens []string) (int64, error) {
	const chunk = 1000
	tokens = slices.Clone(tokens)
	slices.Sort(tokens)
	var n int64
	for part := range slices.Chunk(tokens, chunk) {
		q, args, err := sqlx.In("UPDATE participations SET status = ? WHERE status = 'pending' AND token IN (?)",
			status, part)
		if err != nil {
			return n, err
		}
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return n, unavailable(err)
		}
		m, err := res.RowsAffected()
		if err != nil {
			return n, unavailable(err)
		}
		n += m
	}
	return n, nil
}

// LiveActivities returns the open activities and those closed less than
// closedWithin ago, whose claims and records may still need settling.
func (r *Repository) LiveActivities(ctx context.Context, closedWithin time.Duration) ([]*activity.Activity, error) {
	return r.activities(ctx, "SELECT "+activityColumns+` FROM activities
		WHERE state = 'open' OR (state = 'closed' AND updated_at > ?) ORDER BY id`,
		r.stamp().Add(-closedWithin))
}

// SetSurplus writes an activity's stock snapshot if its stock is still
// stock.
func (r *Repository) SetSurplus(ctx context.Context, id, stock, surplus int64, at time.Time) error {
	_, err := r.exec(ctx, "UPDATE activities SET surplus = ?, reconciled_at = ? WHERE id = ? AND stock = ?",
		surplus, at.UTC().Truncate(time.Millisecond), id, stock)
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// BeginRebuild starts a new epoch for an activity whose Redis state was lost,
// in one transaction: the activity row is locked; the pending records of
// the state that was lost, those made in their shard's epoch, are settled
// as decide says, from them and every record sharing a slot or a user with
// one of them (all a decision can look at, and bounded by the records in
// doubt, not by the sale); pending records of older epochs are void (their
// epoch was rebuilt after every acknowledged event of it had arrived, so
// none of them was confirmed); and the activity with its new epoch, every
// shard's, is returned.
func (r *Repository) BeginRebuild(ctx context.Context, id int64, decide func([]activity.Participation) activity.Decision) (*activity.Activity, error) {
	return r.beginRebuild(ctx, id, -1, nil, decide)
}

// BeginShardRebuild is BeginRebuild for one lost shard of a sharded
// activity: only the pending records of its users are settled, those on a
// number that left the shard (left) void, and only its epoch moves on, to
// the activity's next.
func (r *Repository) BeginShardRebuild(ctx context.Context, id int64, shard int, left func(slot int64) bool, decide func([]activity.Participation) activity.Decision) (*activity.Activity, error) {
	return r.beginRebuild(ctx, id, shard, left, decide)
}

func (r *Repository) beginRebuild(ctx context.Context, id int64, shard int, left func(int64) bool, decide func([]activity.Participation) activity.Decision) (*activity.Activity, error) {
	tx, err := r.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, unavailable(err)
	}
	defer func() { _ = tx.Rollback() }() // after a commit it only says ErrTxDone
	var row activityRow
	err = tx.GetContext(ctx, &row, "SELECT "+activityColumns+" FROM activities WHERE id = ? FOR UPDATE", id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, activity.ErrNotFound
	}
	if err != nil {
		return nil, unavailable(err)
	}
	a := row.domain()
	if shard >= a.Shards {
		return nil, fmt.Errorf("activity %d has no shard %d", id, shard)
	}
	valid, void, err := inDoubt(ctx, tx, a, shard, left, decide)
	if err != nil {
		return nil, err
	}
	if err := settle(ctx, tx, id, valid, void); err != nil {
		return nil, err
	}
	var epochs []int64 // nil: every shard at the new epoch
	if shard >= 0 {
		epochs = make([]int64, a.Shards)
		for j := range epochs {
			epochs[j] = a.ShardEpoch(j)
		}
		epochs[shard] = a.Epoch + 1
	}
	a.Epoch, a.ShardEpochs = a.Epoch+1, epochs
	if _, err := tx.ExecContext(ctx, "UPDATE activities SET epoch = ?, shard_epochs = ? WHERE id = ?",
		a.Epoch, activity.FormatSeqs(a.ShardEpochs), id); err != nil {
		return nil, unavailable(err)
	}
	if err := tx.Commit(); err != nil {
		return nil, unavailable(err)
	}
	return a, nil
}

// inDoubt settles the pending records of activity a's lost state, of shard
// shard's users (every user's when shard < 0): those of an older epoch than
// their shard's and those on a number that left the shard (left) are void;
// decide settles the others, from them and every record that shares a slot
// or a user with one of them, but those of a shard's earlier epochs that
// are not valid (the rebuild of their epoch settled them, and their claim
// numbers are not ordered with the claims made since).
func inDoubt(ctx context.Context, tx *sqlx.Tx, a *activity.Activity, shard int, left func(int64) bool, decide func([]activity.Participation) activity.Decision) (valid, void []string, err error) {
	current := func(p activity.Participation) bool {
		return p.Epoch >= a.ShardEpoch(activity.HomeShard(p.UserID, a.Shards))
	}
	var pending []participationRow
	if err := tx.SelectContext(ctx, &pending, "SELECT "+participationColumns+
		" FROM participations WHERE activity_id = ? AND status = 'pending'", a.ID); err != nil {
		return nil, nil, unavailable(err)
	}
	doubt := map[string]bool{}
	var records []activity.Participation
	slots, users := map[int64]bool{}, map[string]bool{}
	for _, row := range pending {
		p := row.domain()
		switch {
		case shard >= 0 && activity.HomeShard(p.UserID, a.Shards) != shard:
		case !current(p) || left != nil && left(p.Slot):
			void = append(void, p.Token)
		default:
			doubt[p.Token] = true
			records = append(records, p)
			slots[p.Slot], users[p.UserID] = true, true
		}
	}
	if len(records) == 0 {
		return nil, void, nil
	}
	seen := maps.Clone(doubt)
	const chunk = 1000
	for _, q := range []struct {
		column string
		values []any
	}{{"slot", keysOf(slots)}, {"user_id", keysOf(users)}} {
		for part := range slices.Chunk(q.values, chunk) {
			query, args, err := sqlx.In("SELECT "+participationColumns+" FROM participations WHERE activity_id = ? AND "+
				q.column+" IN (?)", a.ID, part)
			if err != nil {
				return nil, nil, err
			}
			var rows []participationRow
			if err := tx.SelectContext(ctx, &rows, query, args...); err != nil {
				return nil, nil, unavailable(err)
			}
			for _, row := range rows {
				p := row.domain()
				if !seen[p.Token] && (p.Status == activity.RecordValid || current(p)) {
					seen[p.Token] = true
					records = append(records, p)
				}
			}
		}
	}
	d := decide(records)
	for _, t := range d.Valid {
		if doubt[t] {
			valid = append(valid, t)
		}
	}
	for _, t := range d.Void {
		if doubt[t] {
			void = append(void, t)
		}
	}
	return valid, void, nil
}

func keysOf[K comparable](m map[K]bool) []any {
	out := make([]any, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// ValidParticipations returns up to limit valid records of an activity in
// slot order, from the one after (afterSlot, afterToken) on. The range on
// the slot alone walks the index; the rows of afterSlot already read are
// skipped here (a slot holds one valid record, so they are few).
func (r *Repository) ValidParticipations(ctx context.Context, id, afterSlot int64, afterToken string, limit int) ([]activity.Participation, error) {
	var rows []participationRow
	for read := limit; ; {
		// Without the hint the optimizer may prefer (activity_id, status)
		// and sort every remaining row for each page.
		err := r.db.SelectContext(ctx, &rows, "SELECT "+participationColumns+` FROM participations
			FORCE INDEX (idx_participations_valid)
			WHERE activity_id = ? AND status = 'valid' AND slot >= ? ORDER BY slot, token LIMIT ?`, id, afterSlot, read)
		if err != nil {
			return nil, unavailable(err)
		}
		out := make([]activity.Participation, 0, min(len(rows), limit))
		for _, p := range rows {
			if (p.Slot > afterSlot || p.Token > afterToken) && len(out) < limit {
				out = append(out, p.domain())
			}
		}
		if len(out) == limit || len(rows) < read {
			return out, nil
		}
		read += limit - len(out) // afterSlot's rows took places: read as many more
	}
}

// Redeem sets the redeemed_at of a valid record that has none. Of
// concurrent redeems of one token the first UPDATE changes the row and the
// others, waiting on its lock, then find it redeemed.
func (r *Repository) Redeem(ctx context.Context, token string, at time.Time) (*activity.Participation, error) {
	var p *activity.Participation
	err := r.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE participations SET redeemed_at = ?
		WHERE token = ? AND status = 'valid' AND redeemed_at IS NULL`, at, token)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		var row participationRow
		if err := tx.GetContext(ctx, &row, "SELECT "+participationColumns+" FROM participations WHERE token = ?", token); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return activity.ErrNotFound
			}
			return err
		}
		got := row.domain()
		p = &got
		switch {
		case p.Status != activity.RecordValid:
			return activity.ErrNotFound
		case n == 0 && p.RedeemedAt != nil:
			return &activity.RedeemedError{RedeemedAt: *p.RedeemedAt}
		case n == 0:
			return errors.New("the redeem changed no row of a valid record")
		}
		return appendAudit(ctx, tx, "redeem", p.ActivityID, token,
			map[string]any{"slot": p.Slot, "userId": p.UserID, "redeemedAt": nil},
			map[string]any{"slot": p.Slot, "userId": p.UserID, "redeemedAt": p.RedeemedAt})
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// SetStock writes the stock of an activity in state from and moves its
// stock snapshot by the change.
func (r *Repository) SetStock(ctx context.Context, id int64, from activity.State, stock int64) error {
	return r.changeActivity(ctx, id, "stock", `UPDATE activities SET surplus = surplus + (? - CAST(stock AS SIGNED)),
		stock = ?, updated_at = ? WHERE id = ? AND state = ?`, stock, stock, r.stamp(), id, from)
}

// SetAutoOpen writes the auto_open of an activity in state from alone.
func (r *Repository) SetAutoOpen(ctx context.Context, id int64, from activity.State, on bool) error {
	return r.changeActivity(ctx, id, "auto_open", "UPDATE activities SET auto_open = ?, updated_at = ? WHERE id = ? AND state = ?",
		on, r.stamp(), id, from)
}

// DueActivities returns up to 100 approved activities with auto_open whose
// begin_at is at or before by and whose end_at is after endAfter, soonest
// first.
func (r *Repository) DueActivities(ctx context.Context, by, endAfter time.Time) ([]*activity.Activity, error) {
	return r.activities(ctx, "SELECT "+activityColumns+` FROM activities
		WHERE state = 'approved' AND auto_open = 1 AND begin_at <= ? AND end_at > ?
		ORDER BY begin_at, id LIMIT 100`, by.UTC(), endAfter.UTC())
}

// Unpublished returns up to limit valid records not yet published to the
// tokens topic, oldest first: the outbox the token publisher reads. Pending
// and void records are never in it.
func (r *Repository) Unpublished(ctx context.Context, limit int) ([]activity.Participation, error) {
	// The hint keeps the read a seek on the outbox index, however many
	// published records the (status, recorded_at) index also offers.
	return r.participations(ctx, `FORCE INDEX (idx_participations_outbox)
		WHERE published = 0 AND status = 'valid' ORDER BY recorded_at, token LIMIT ?`, limit)
}

// MarkPublished marks records published: the broker acknowledged them on the
// tokens topic. Marking a record again, or a token that has no record,
// changes nothing.
func (r *Repository) MarkPublished(ctx context.Context, tokens []string) error {
	// In token order, as RecordBatch and SettleParticipations lock the rows,
	// one statement a thousand tokens; each statement commits alone, as a
	// record marked is marked for good.
	tokens = slices.Clone(tokens)
	slices.Sort(tokens)
	for part := range slices.Chunk(tokens, 1000) {
		q, args, err := sqlx.In("UPDATE participations SET published = 1 WHERE published = 0 AND token IN (?)", part)
		if err != nil {
			return err
		}
		if _, err := r.db.ExecContext(ctx, q, args...); err != nil {
			return unavailable(err)
		}
	}
	return nil
}
