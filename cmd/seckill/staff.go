package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"seckill/activity"
	"seckill/activity/mysql"
)

const staffUsage = `usage:
  seckill staff add -name NAME -role ROLE [flags]   create an account; its token is the last line of the output
  seckill staff list [flags]                        the accounts, by name
  seckill staff remove -name NAME [flags]           remove an account: its token is refused at once
roles: admin, editor, approver, operator, draw, viewer; the flags are the server's (-mysql-dsn, ...)`

// cliActor is the actor of the staff command in the audit log.
var cliActor = activity.Actor{Name: activity.CLIActor, Role: activity.RoleAdmin, RequestID: "cli"}

// staffCommand runs seckill staff: it works on the accounts in MySQL
// directly, as an admin would over the API.
func staffCommand(args []string, getenv func(string) string, stdout, stderr *output) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		stderr.printf("seckill staff: name a command: add, list or remove\n%s\n", staffUsage)
		return 2
	}
	sub, rest := args[0], args[1:]
	own := flag.NewFlagSet("staff", flag.ContinueOnError)
	own.SetOutput(io.Discard)
	name := own.String("name", "", "")
	role := own.String("role", "", "")
	// -name and -role are the command's; every other flag is the server's.
	var server []string
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		key, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && (key == "name" || key == "role") {
			pair := []string{a}
			if !hasValue && i+1 < len(rest) {
				i++
				pair = append(pair, rest[i])
			}
			if err := own.Parse(pair); err != nil {
				stderr.printf("seckill staff: %v\n", err)
				return 2
			}
			continue
		}
		server = append(server, a)
	}
	cfg, err := LoadConfig(server, getenv, io.Discard)
	if err != nil {
		stderr.printf("seckill staff: %v\n", err)
		return 2
	}
	switch {
	case sub != "add" && sub != "list" && sub != "remove":
		stderr.printf("seckill staff: unknown command %q\n%s\n", sub, staffUsage)
		return 2
	case sub != "list" && *name == "":
		stderr.printf("seckill staff %s: -name is required\n", sub)
		return 2
	case sub == "add" && *role == "":
		stderr.printf("seckill staff add: -role is required (admin, editor, approver, operator, draw, viewer)\n")
		return 2
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := mysql.Open(ctx, cfg.MySQLDSN)
	if err != nil {
		stderr.printf("seckill staff: %s: start MySQL/MariaDB or set SECKILL_MYSQL_DSN\n", oneLine(err))
		return 1
	}
	defer func() { _ = db.Close() }()
	staff := activity.NewStaffing(mysql.NewRepository(db))
	ctx = activity.WithActor(ctx, cliActor)
	switch sub {
	case "add":
		st, token, err := staff.Add(ctx, *name, activity.Role(*role))
		if err != nil {
			return staffFailed(stderr, err)
		}
		stdout.printf("seckill: staff %s added with role %s; its token, shown this once, is the next line\n%s\n", st.Name, st.Role, token)
	case "list":
		list, err := staff.List(ctx)
		if err != nil {
			return staffFailed(stderr, err)
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		_, _ = io.WriteString(w, "NAME\tROLE\tCREATED\tBY\n")
		for _, s := range list {
			_, _ = io.WriteString(w, s.Name+"\t"+string(s.Role)+"\t"+s.CreatedAt.Format(time.RFC3339)+"\t"+s.CreatedBy+"\n")
		}
		_ = w.Flush()
	case "remove":
		if err := staff.Remove(ctx, *name); err != nil {
			return staffFailed(stderr, err)
		}
		stdout.printf("seckill: staff %s removed; its token is refused from now on\n", *name)
	}
	return 0
}

func staffFailed(stderr *output, err error) int {
	var ve *activity.ValidationError
	switch {
	case errors.As(err, &ve):
		stderr.printf("seckill staff: %s\n", ve.Error())
		return 2
	case errors.Is(err, activity.ErrExists):
		stderr.printf("seckill staff: the name is taken\n")
	case errors.Is(err, activity.ErrNotFound):
		stderr.printf("seckill staff: no such staff member\n")
	default:
		stderr.printf("seckill staff: %s\n", oneLine(err))
	}
	return 1
}
