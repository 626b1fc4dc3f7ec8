// Package sql holds the schema migrations, numbered NNN_name.sql and applied
// in order by the server at start.
package sql

import "embed"

// Migrations are the migration files.
//
//go:embed *.sql
var Migrations embed.FS
