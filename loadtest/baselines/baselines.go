// Package baselines holds the designs this service is measured against, each
// behind its own gin join endpoint so every design pays the same HTTP cost:
// the conditional UPDATE, SELECT … FOR UPDATE, the optimistic version column,
// one Redis lock around the activity (seeds 000, 001, 003, 004), and the
// seed's own INCR + SETNX slot lock with a fire-and-forget Kafka message
// (seed 002). Each is written as strong as its design allows: one round trip
// per statement (client-side interpolation), the shortest critical section
// the design permits, and retry delays tuned for a hot row instead of the
// articles' 100 ms sleeps.
//
// Every design answers like the service: 200 with a token, 409 sold_out,
// 409 limit_reached, or 503 unavailable when it gave up (lock or version
// retries exhausted, a dependency failed).
package baselines

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Design is one baseline.
type Design struct {
	// Key is the letter of the design in the comparison table.
	Key string
	// Name is the path segment of its endpoint.
	Name string
	// Short names it in the table.
	Short string
	// Title says what it does, in one line.
	Title string
}

// Path returns the join endpoint of the design for activity id.
func (d Design) Path(id int64) string {
	return fmt.Sprintf("/api/v1/%s/activities/%d/join", d.Name, id)
}

// Designs are the baselines in table order.
var Designs = []Design{
	{Key: "a", Name: "conditional", Short: "MySQL conditional UPDATE", Title: "MySQL: conditional UPDATE … WHERE stock > 0 + INSERT, one transaction"},
	{Key: "b", Name: "forupdate", Short: "MySQL SELECT FOR UPDATE", Title: "MySQL: SELECT … FOR UPDATE, UPDATE, INSERT, one transaction"},
	{Key: "c", Name: "optimistic", Short: "MySQL optimistic version", Title: "MySQL: optimistic version column, bounded retries"},
	{Key: "d", Name: "redislock", Short: "Redis lock + MySQL", Title: "one Redis lock (SET NX PX, redsync style) around the MySQL UPDATE + INSERT"},
	{Key: "e", Name: "seed002", Short: "seed 002 INCR+SETNX+MQ", Title: "seed 002: INCR + SETNX slot lock, MySQL INSERT, fire-and-forget Kafka (acks=1)"},
}

// CeilingPath is the HTTP ceiling, a bare net/http endpoint: it decodes the
// join's body and answers a token's JSON of the same shape and size, and
// touches nothing else.
const CeilingPath = "/hello"

var (
	errSoldOut = errors.New("sold out")
	errLimit   = errors.New("limit reached")
	// errBusy: the design gave up (version retries or lock tries exhausted,
	// slot lock taken); nothing was taken.
	errBusy = errors.New("busy")
)

var schema = []string{
	`CREATE TABLE IF NOT EXISTS activity (
  id      BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  design  VARCHAR(16)     NOT NULL,
  total   INT             NOT NULL COMMENT 'stock when created',
  stock   INT             NOT NULL COMMENT 'stock left (seed 002: the snapshot its consumer writes)',
  version BIGINT UNSIGNED NOT NULL DEFAULT 0,
  PRIMARY KEY (id)
) ENGINE=InnoDB`,
	`CREATE TABLE IF NOT EXISTS participation (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  activity_id BIGINT UNSIGNED NOT NULL,
  user_id     VARCHAR(64)     NOT NULL,
  slot        INT             NOT NULL DEFAULT 0,
  created_at  DATETIME(3)     NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_participation_user (activity_id, user_id)
) ENGINE=InnoDB`,
}

// Migrate creates the two tables of the baselines: activity (stock and
// version) and participation (one row per successful join, unique per user,
// which is the per-user limit of 1).
func Migrate(ctx context.Context, db *sql.DB) error {
	for _, q := range schema {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("baselines: schema: %w", err)
		}
	}
	return nil
}

// CreateActivity inserts an activity for design with the given stock and
// returns its id.
func CreateActivity(ctx context.Context, db *sql.DB, design string, stock int64) (int64, error) {
	res, err := db.ExecContext(ctx, "INSERT INTO activity (design, total, stock) VALUES (?, ?, ?)", design, stock, stock)
	if err != nil {
		return 0, fmt.Errorf("baselines: create activity: %w", err)
	}
	return res.LastInsertId()
}

// Counts returns the participation records of an activity and the stock
// left in its MySQL row.
func Counts(ctx context.Context, db *sql.DB, id int64) (records, left int64, err error) {
	if err = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM participation WHERE activity_id = ?", id).Scan(&records); err != nil {
		return 0, 0, fmt.Errorf("baselines: count records: %w", err)
	}
	if err = db.QueryRowContext(ctx, "SELECT stock FROM activity WHERE id = ?", id).Scan(&left); err != nil {
		return 0, 0, fmt.Errorf("baselines: read stock: %w", err)
	}
	return records, left, nil
}

// WaitSnapshot waits until the MySQL stock of activity id equals want or
// the timeout passes, and returns the last value read. Seed 002 writes the
// snapshot asynchronously, from its Kafka consumer.
func WaitSnapshot(ctx context.Context, db *sql.DB, id, want int64, timeout time.Duration) (int64, error) {
	deadline := time.Now().Add(timeout)
	for {
		var left int64
		if err := db.QueryRowContext(ctx, "SELECT stock FROM activity WHERE id = ?", id).Scan(&left); err != nil {
			return 0, err
		}
		if left == want || time.Now().After(deadline) {
			return left, nil
		}
		select {
		case <-ctx.Done():
			return left, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
