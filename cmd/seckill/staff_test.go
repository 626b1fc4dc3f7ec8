package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestStaffAcrossInstances: a staff account made from the command line
// signs in on two instances with its role; removed on one (over the API),
// its token is refused on the other at once.
func TestStaffAcrossInstances(t *testing.T) {
	cfg := testConfig(t)
	first := startApp(t, cfg)
	c := cfg
	c.KafkaBrokers = first.embedded.Brokers()
	second := startApp(t, c)

	var out, errOut strings.Builder
	dsn := "-mysql-dsn=" + cfg.MySQLDSN
	if code := run([]string{"staff", "add", "-name", "olga", "-role", "operator", dsn}, func(string) string { return "" }, &out, &errOut); code != 0 {
		t.Fatalf("seckill staff add: %d %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	token := lines[len(lines)-1]
	if len(token) < 40 || strings.Contains(token, " ") {
		t.Fatalf("the last line of seckill staff add is %q, want the token alone", token)
	}
	out.Reset()
	if code := run([]string{"staff", "list", dsn}, func(string) string { return "" }, &out, &errOut); code != 0 || !strings.Contains(out.String(), "olga") {
		t.Fatalf("seckill staff list: %d %q %s", code, out.String(), errOut.String())
	}
	if code := run([]string{"staff", "add", "-name", "olga", "-role", "viewer", dsn}, func(string) string { return "" }, &out, &errOut); code != 1 {
		t.Fatalf("adding olga twice: exit %d, want 1", code)
	}

	me := func(app *App) (int, string) {
		req, _ := http.NewRequest("GET", app.URL()+"/api/v1/admin/me", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	for _, app := range []*App{first, second} {
		if code, body := me(app); code != http.StatusOK || !strings.Contains(body, `"role":"operator"`) {
			t.Fatalf("olga's /me: %d %s", code, body)
		}
	}
	if code, body := adminCall(t, first, "DELETE", "/api/v1/admin/staff/olga", ""); code != http.StatusNoContent {
		t.Fatalf("remove olga: %d %s", code, body)
	}
	if code, body := me(second); code != http.StatusUnauthorized {
		t.Fatalf("olga's token on the other instance right after the removal: %d %s, want 401", code, body)
	}
}
