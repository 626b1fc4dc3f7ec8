// Package mysql keeps activities and participation records in MySQL (or
// MariaDB) with sqlx. It creates the database when it is missing and applies
// the migrations of the sql package at start.
package mysql

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"seckill/activity"
	schema "seckill/sql"
)

// Open connects to the database named in dsn, creating it when it is missing,
// and applies the pending migrations. The DSN is a go-sql-driver DSN; times
// are always read and written in UTC.
func Open(ctx context.Context, dsn string) (*sqlx.DB, error) {
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("mysql: bad DSN: %w", err)
	}
	if cfg.DBName == "" {
		return nil, errors.New("mysql: the DSN names no database")
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.ClientFoundRows = true // UPDATE reports matched rows, changed or not
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if err := createDatabase(ctx, cfg); err != nil {
		return nil, err
	}
	db, err := sqlx.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(64)
	db.SetMaxIdleConns(64)
	db.SetConnMaxLifetime(30 * time.Minute)
	if err := Migrate(ctx, db); err != nil {
		_ = db.Close() // the migration's error is the one to tell
		return nil, err
	}
	return db, nil
}

func createDatabase(ctx context.Context, cfg *gomysql.Config) error {
	c := cfg.Clone()
	c.DBName = ""
	db, err := sql.Open("mysql", c.FormatDSN())
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }() // a pool used for one statement
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("mysql at %s: %w", cfg.Addr, err)
	}
	q := "CREATE DATABASE IF NOT EXISTS `" + strings.ReplaceAll(cfg.DBName, "`", "``") +
		"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("mysql: create database %s: %w", cfg.DBName, err)
	}
	return nil
}

// Migrate applies the migrations not yet applied, in order, under a named
// lock so that instances starting together do not race. It is idempotent.
func Migrate(ctx context.Context, db *sqlx.DB) error {
	conn, err := db.Connx(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }() // back to the pool, or gone with it
	var got sql.NullInt64
	if err := conn.GetContext(ctx, &got, "SELECT GET_LOCK('seckill.migrate', 60)"); err != nil {
		return fmt.Errorf("mysql: migration lock: %w", err)
	}
	if got.Int64 != 1 {
		return errors.New("mysql: migration lock: another instance holds it")
	}
	defer func() {
		// A lock that is not released goes with the connection, closed
		// right after: nothing to do about an error here.
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK('seckill.migrate')")
	}()

	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at DATETIME(3) NOT NULL)`); err != nil {
		return fmt.Errorf("mysql: schema_migrations: %w", err)
	}
	var applied []int
	if err := conn.SelectContext(ctx, &applied, "SELECT version FROM schema_migrations"); err != nil {
		return err
	}
	done := make(map[int]bool, len(applied))
	for _, v := range applied {
		done[v] = true
	}
	files, err := Migrations()
	if err != nil {
		return err
	}
	for _, m := range files {
		if done[m.Version] {
			continue
		}
		for _, stmt := range m.Statements {
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("mysql: migration %s: %w", m.Name, err)
			}
		}
		if _, err := conn.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
			m.Version, m.Name, time.Now().UTC()); err != nil {
			return err
		}
	}
	return nil
}

// Migration is one numbered schema file.
type Migration struct {
	Version    int
	Name       string
	Statements []string
}

// Migrations returns the embedded migrations in order. Files are named
// NNN_name.sql; statements end with a semicolon at the end of a line.
func Migrations() ([]Migration, error) {
	names, err := fs.Glob(schema.Migrations, "*.sql")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, name := range names {
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("mysql: migration %s: name must start with a number and _", name)
		}
		body, err := fs.ReadFile(schema.Migrations, name)
		if err != nil {
			return nil, err
		}
		m := Migration{Version: v, Name: name}
		for _, stmt := range strings.Split(string(body), ";\n") {
			if s := strings.TrimSpace(stripComments(stmt)); s != "" {
				m.Statements = append(m.Statements, s)
			}
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("mysql: two migrations numbered %d", out[i].Version)
		}
	}
	return out, nil
}

func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// TokenSecret returns the server secret that signs tokens, creating it on
// first use. Every instance on the same database shares it, and it survives
// restarts, so tokens stay verifiable.
func TokenSecret(ctx context.Context, db *sqlx.DB) ([]byte, error) {
	fresh := make([]byte, 32)
	_, _ = rand.Read(fresh)
	if _, err := db.ExecContext(ctx, "INSERT IGNORE INTO settings (name, value) VALUES ('token_secret', ?)", fresh); err != nil {
		return nil, unavailable(err)
	}
	var secret []byte
	if err := db.GetContext(ctx, &secret, "SELECT value FROM settings WHERE name = 'token_secret'"); err != nil {
		return nil, unavailable(err)
	}
	return secret, nil
}

func unavailable(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	return activity.Unavailable("mysql", err)
}
