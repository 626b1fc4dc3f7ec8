package baselines

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"seckill/loadtest/load"
)

const insertParticipation = "INSERT INTO participation (activity_id, user_id, slot, created_at) VALUES (?, ?, ?, NOW(3))"

// insert writes the participation record inside tx and returns its id. A
// second record of the same user is errLimit.
func insert(ctx context.Context, tx *sql.Tx, id int64, user string, slot int64) (int64, error) {
	res, err := tx.ExecContext(ctx, insertParticipation, id, user, slot)
	if err != nil {
		return 0, duplicate(err)
	}
	return res.LastInsertId()
}

func duplicate(err error) error {
	var me *gomysql.MySQLError
	if errors.As(err, &me) && me.Number == 1062 {
		return errLimit
	}
	return err
}

// conditional is design (a): the stock check is the WHERE clause of the
// UPDATE, so the row lock is the only serialisation; the record is written in
// the same transaction. Success: BEGIN, UPDATE, INSERT, COMMIT; sold out:
// BEGIN, UPDATE (0 rows), ROLLBACK. (INSERT first, to hold the row lock for
// one round trip less, measured no faster here and made sold-out answers
// slower.)
func (s *Server) conditional(ctx context.Context, id int64, user string) (int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }() // after a commit it only says ErrTxDone
	if err := takeOne(ctx, tx, id); err != nil {
		return 0, err
	}
	rec, err := insert(ctx, tx, id, user, 0)
	if err != nil {
		return 0, err
	}
	return rec, tx.Commit()
}

// takeOne is the conditional UPDATE; 0 rows affected means sold out.
func takeOne(ctx context.Context, tx *sql.Tx, id int64) error {
	res, err := tx.ExecContext(ctx, "UPDATE activity SET stock = stock - 1 WHERE id = ? AND stock > 0", id)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return errSoldOut
	}
	return nil
}

// forUpdate is design (b), the pessimistic row lock of seeds 000 and 003:
// read the stock with SELECT … FOR UPDATE, check it, UPDATE, INSERT,
// COMMIT. The row lock is held from the SELECT to the COMMIT.
func (s *Server) forUpdate(ctx context.Context, id int64, user string) (int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }() // after a commit it only says ErrTxDone
	var left int64
	if err := tx.QueryRowContext(ctx, "SELECT stock FROM activity WHERE id = ? FOR UPDATE", id).Scan(&left); err != nil {
		return 0, err
	}
	if left <= 0 {
		return 0, errSoldOut
	}
	if _, err := tx.ExecContext(ctx, "UPDATE activity SET stock = stock - 1 WHERE id = ?", id); err != nil {
		return 0, err
	}
	rec, err := insert(ctx, tx, id, user, 0)
	if err != nil {
		return 0, err
	}
	return rec, tx.Commit()
}

// optimistic is design (c), the version column of seeds 000, 001 and 003:
// read stock and version without a lock; UPDATE … WHERE version = read
// version in a transaction with the INSERT; 0 rows means someone else won,
// so retry after a random, growing backoff, at most OptimisticAttempts times
// (seed 003 retries 3 times after 100 ms, which answers most joins with an
// error on a hot row; shorter backoffs than the default make the retries
// collide into a livelock here).
func (s *Server) optimistic(ctx context.Context, id int64, user string) (int64, error) {
	for attempt := range s.opt.OptimisticAttempts {
		if attempt > 0 {
			if err := load.Sleep(ctx, jitter(s.opt.OptimisticBackoff<<min(attempt-1, 4))); err != nil {
				return 0, err
			}
		}
		var left int64
		var version uint64
		if err := s.db.QueryRowContext(ctx, "SELECT stock, version FROM activity WHERE id = ?", id).Scan(&left, &version); err != nil {
			return 0, err
		}
		if left <= 0 {
			return 0, errSoldOut
		}
		rec, err := s.optimisticAttempt(ctx, id, user, version)
		if errors.Is(err, errConflict) {
			continue
		}
		return rec, err
	}
	return 0, errBusy
}

var errConflict = errors.New("version changed")

func (s *Server) optimisticAttempt(ctx context.Context, id int64, user string, version uint64) (int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }() // after a commit it only says ErrTxDone
	res, err := tx.ExecContext(ctx,
		"UPDATE activity SET stock = stock - 1, version = version + 1 WHERE id = ? AND version = ? AND stock > 0", id, version)
	if err != nil {
		return 0, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return 0, err
	} else if n == 0 {
		return 0, errConflict
	}
	rec, err := insert(ctx, tx, id, user, 0)
	if err != nil {
		return 0, err
	}
	return rec, tx.Commit()
}

// jitter returns a random duration in [d/2, d].
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}
