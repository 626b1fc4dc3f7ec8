package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"seckill/loadtest/load"
)

// join is compare -join, the load alone against a running service (see the
// package comment).
func join(args []string) int {
	fs := flag.NewFlagSet("compare -join", flag.ContinueOnError)
	urlList := fs.String("url", "http://127.0.0.1:8080", "base URL of the service; several, comma-separated, for instances of one service (joins go to each in turn)")
	token := fs.String("token", os.Getenv("SECKILL_ADMIN_TOKEN"), "admin token (to create the activity)")
	conns := fs.Int("c", 64, "connections")
	dur := fs.Duration("d", 10*time.Second, "duration")
	stock := fs.Int64("stock", 1_000_000, "stock of the activity created")
	activity := fs.Int64("activity", 0, "join this activity instead of creating one")
	path := fs.String("path", "", "POST this path instead of the join endpoint (e.g. a bare endpoint)")
	jwtSecret := fs.String("jwt-secret", os.Getenv("SECKILL_JWT_SECRET"), `for a service in jwt mode: the "k" (base64url) of an oct key of its JWKS file; every join then carries the HS256 JWT of its user`)
	jwtKid := fs.String("jwt-kid", "", "the kid of that key")
	jwtIssuer := fs.String("jwt-issuer", os.Getenv("SECKILL_JWT_ISSUER"), "iss of the tokens (the service's SECKILL_JWT_ISSUER)")
	jwtAudience := fs.String("jwt-audience", os.Getenv("SECKILL_JWT_AUDIENCE"), "aud of the tokens (the service's SECKILL_JWT_AUDIENCE)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var signer *load.Signer
	if *jwtSecret != "" {
		secret, err := load.ParseSecret(*jwtSecret)
		if err != nil {
			fmt.Fprintln(os.Stderr, "compare -join: -jwt-secret:", err)
			return 2
		}
		signer = &load.Signer{Secret: secret, KeyID: *jwtKid, Issuer: *jwtIssuer, Audience: *jwtAudience}
	}
	if *dur <= 0 || *dur > 10*time.Minute || *conns < 1 || *conns > 4096 {
		fmt.Fprintln(os.Stderr, "compare -join: -d must be in (0, 10m] and -c in [1, 4096]")
		return 2
	}
	bases, err := splitURLs(*urlList)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare -join: -url:", err)
		return 2
	}
	ctx := context.Background()
	target := *path
	if target == "" {
		id := *activity
		if id == 0 {
			if id, err = newService(bases[0], *token).openActivity(ctx, "compare -join", *stock); err != nil {
				fmt.Fprintln(os.Stderr, "compare -join:", err)
				return 1
			}
		}
		target = joinPath(id)
	}
	targets := endpoints(bases, target)
	r, err := load.Run(ctx, load.Options{URLs: targets, Conns: *conns, Duration: *dur, UserPrefix: userPrefix("load"), Signer: signer})
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare -join:", err)
		return 1
	}
	if err := printJoin(os.Stdout, r, *conns, len(targets)); err != nil {
		fmt.Fprintln(os.Stderr, "compare -join:", err)
		return 1
	}
	return 0
}

// splitURLs reads -url: one base URL or several, comma-separated, each
// http:// or https:// with a host, without the trailing slash.
func splitURLs(list string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimRight(strings.TrimSpace(s), "/")
		u, err := url.Parse(s)
		if s == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%q: want base URLs such as http://127.0.0.1:8080, comma-separated", list)
		}
		out = append(out, s)
	}
	return out, nil
}

// newService drives the service at base through its admin API.
func newService(base, token string) *service {
	return &service{url: base, token: token, client: &http.Client{Timeout: 10 * time.Second}}
}

// joinPath is the join endpoint of activity id.
func joinPath(id int64) string { return fmt.Sprintf("/api/v1/activities/%d/join", id) }

// endpoints is path on each base URL.
func endpoints(bases []string, path string) []string {
	out := make([]string, len(bases))
	for i, b := range bases {
		out[i] = b + path
	}
	return out
}

// userPrefix starts the userIds of one invocation: kind, then a random tag,
// so users are fresh across invocations against the same service.
func userPrefix(kind string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return kind + "-" + hex.EncodeToString(b) + "-"
}

func printJoin(w io.Writer, r *load.Result, conns, instances int) error {
	var b bytes.Buffer
	over := ""
	if instances > 1 {
		over = fmt.Sprintf(" over %d URLs", instances)
	}
	fmt.Fprintf(&b, "requests %d in %v with %d connections%s: %.0f req/s; p50 %v p99 %v max %v\n",
		r.Requests, r.Elapsed.Round(time.Millisecond), conns, over, r.PerSec(r.Requests),
		r.Percentile(0.50).Round(time.Microsecond), r.Percentile(0.99).Round(time.Microsecond),
		r.Percentile(1).Round(time.Microsecond))
	fmt.Fprintf(&b, "  200: %d\n  409 sold_out: %d\n", r.OK, r.SoldOut)
	for _, k := range slices.Sorted(maps.Keys(r.Other)) {
		fmt.Fprintf(&b, "  %s: %d\n", k, r.Other[k])
	}
	_, err := w.Write(b.Bytes())
	return err
}
