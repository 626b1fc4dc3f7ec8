package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"seckill/internal/testenv"
)

// clusterPorts returns n free ports whose port+10000, a Redis Cluster
// node's bus, is free too.
func clusterPorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	seen := map[int]bool{}
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			t.Fatal("no free ports with a free port+10000")
		}
		_, ps, _ := net.SplitHostPort(freeAddr(t))
		p, _ := strconv.Atoi(ps)
		if p > 55535 || seen[p] || seen[p+10000] {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		if err != nil {
			continue
		}
		_ = ln.Close()
		seen[p], seen[p+10000] = true, true
		ports = append(ports, p)
	}
	return ports
}

func joinInts(ps []int) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, " ")
}

// call sends one request to base with the admin token and decodes a JSON
// answer into out.
func call(t *testing.T, base, token, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, base, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s%s: decode: %v", method, base, path, err)
		}
	}
	return resp.StatusCode
}

// readyField returns the value of one line of the script's ready block,
// "  <name>  <value>".
func readyField(out, name string) string {
	for line := range strings.Lines(out) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func redisBusPorts(ps []int) []int {
	var bus []int
	for _, p := range ps {
		bus = append(bus, p+10000)
	}
	return bus
}

// processesOf returns the command lines of the running processes that name
// dir (the binary built into the scratch directory) or are the redis-server
// of one of ports (it names itself "redis-server 127.0.0.1:<port> [cluster]").
func processesOf(dir string, ports []int) []string {
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var out []string
	for _, f := range cmdlines {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // gone meanwhile
		}
		line := strings.ReplaceAll(string(b), "\x00", " ")
		match := strings.Contains(line, dir)
		for _, p := range ports {
			match = match || strings.HasPrefix(line, fmt.Sprintf("redis-server 127.0.0.1:%d ", p))
		}
		if match {
			out = append(out, line)
		}
	}
	return out
}

// TestRunCluster runs scripts/run-cluster.sh on free ports and a database of
// its own: a Redis Cluster, seckill broker and three instances come up; an
// activity made through the first instance sells exactly its stock over
// joins spread across all three; each token reads back from another
// instance than the one that issued it, and MySQL gets every record (the
// instances share the broker). SIGINT then stops everything: the script
// exits 0, every port is free and the scratch directory is gone.
func TestRunCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster, a broker and three server processes")
	}
	for _, tool := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("%s not found (%v): install it with `sudo apt-get install redis-server`, or run scripts/services.sh", tool, err)
			if os.Getenv("CI") != "" {
				t.Fatal(msg + "; CI must run the local cluster test")
			}
			t.Skip(msg)
		}
	}
	ports := clusterPorts(t, 10)
	redisPorts, brokerPort, httpPorts := ports[:6], ports[6], ports[7:]
	tmp := t.TempDir()
	cmd := exec.Command("bash", filepath.Join("..", "..", "scripts", "run-cluster.sh"))
	cmd.Env = append(os.Environ(),
		"REDIS_PORTS="+joinInts(redisPorts),
		"BROKER_PORT="+strconv.Itoa(brokerPort),
		"HTTP_PORTS="+joinInts(httpPorts),
		"SECKILL_MYSQL_DSN="+testenv.DatabaseDSN(t),
		"SECKILL_ADMIN_TOKEN=", // the script generates one
		"KEEP=",
		"TMPDIR="+tmp,
	)
	var out testenv.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	exited := false
	t.Cleanup(func() {
		if !exited {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(40 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}
		if t.Failed() {
			t.Logf("run-cluster output:\n%s", out.String())
		}
	})
	eventually(t, 50*time.Second, "run-cluster ready", func() bool {
		select {
		case err := <-done:
			exited = true
			t.Fatalf("run-cluster exited before ready: %v\n%s", err, out.String())
		default:
		}
		return strings.Contains(out.String(), "Ctrl-C stops everything")
	})

	urls := strings.Fields(readyField(out.String(), "urls"))
	token := readyField(out.String(), "admin token")
	logs := readyField(out.String(), "logs")
	var want []string
	for _, p := range httpPorts {
		want = append(want, fmt.Sprintf("http://127.0.0.1:%d", p))
	}
	if strings.Join(urls, " ") != strings.Join(want, " ") || len(token) < 16 {
		t.Fatalf("ready block: urls %q, admin token %q; want urls %q and a generated token", urls, token, want)
	}
	if !strings.HasPrefix(logs, filepath.Join(tmp, "seckill-cluster.")) {
		t.Fatalf("logs %q: want under the scratch directory in %s", logs, tmp)
	}
	if n := strings.Count(readyField(out.String(), "redis"), ","); n != 5 {
		t.Errorf("redis %q: want six addresses", readyField(out.String(), "redis"))
	}

	// An activity through the first instance's admin API.
	const stockN, users = 6, 9
	begin := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	end := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	var a struct{ ID int64 }
	body := fmt.Sprintf(`{"name":"cluster","stock":%d,"perUserLimit":1,"beginAt":%q,"endAt":%q}`, stockN, begin, end)
	if code := call(t, urls[0], token, "POST", "/api/v1/admin/activities", body, &a); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	for _, action := range []string{"approve", "open"} {
		if code := call(t, urls[0], token, "POST", fmt.Sprintf("/api/v1/admin/activities/%d/%s", a.ID, action), "", nil); code != http.StatusOK {
			t.Fatalf("%s: %d", action, code)
		}
	}

	// Joins through all three; each token read back from the next instance.
	var answers []joinAnswer
	issuedBy := map[string]int{}
	soldOut := 0
	for i := range users {
		ans := joinHTTP(urls[i%3], a.ID, fmt.Sprint("cluster-", i))
		answers = append(answers, ans)
		switch {
		case ans.status == http.StatusOK:
			issuedBy[ans.token] = i % 3
		case ans.status == http.StatusConflict && ans.code == "sold_out":
			soldOut++
		default:
			t.Errorf("join %d through %s: %d %s", i, urls[i%3], ans.status, ans.code)
		}
	}
	got := tokens(t, answers)
	if len(got) != stockN || soldOut != users-stockN {
		t.Fatalf("%d tokens and %d sold_out for %d users on a stock of %d", len(got), soldOut, users, stockN)
	}
	for tok, ans := range got {
		other := urls[(issuedBy[tok]+1)%3]
		var back struct {
			Token, UserID string
			Slot          int64
		}
		if code := call(t, other, "", "GET", "/api/v1/tokens/"+tok, "", &back); code != http.StatusOK ||
			back.Token != tok || back.UserID != ans.user || back.Slot != ans.slot {
			t.Errorf("token of %s (slot %d) from %s: %d %+v", ans.user, ans.slot, other, code, back)
		}
	}
	var s stats
	eventually(t, 30*time.Second, "MySQL has every record", func() bool {
		var v struct{ Stats stats }
		if code := call(t, urls[2], token, "GET", fmt.Sprintf("/api/v1/admin/activities/%d", a.ID), "", &v); code != http.StatusOK {
			t.Fatalf("get activity: %d", code)
		}
		s = v.Stats
		return s.Issued == stockN && s.Recorded == stockN && s.InFlight == 0
	})

	// SIGINT stops everything.
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		exited = true
		if err != nil {
			t.Fatalf("run-cluster after SIGINT: %v, want exit 0", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("run-cluster did not stop within 40 s of SIGINT")
	}
	if !strings.Contains(out.String(), "run-cluster: stopped") {
		t.Errorf("no 'stopped' line after SIGINT")
	}
	for _, p := range append(ports, redisBusPorts(redisPorts)...) {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p), time.Second); err == nil {
			_ = c.Close()
			t.Errorf("port %d still answers after run-cluster stopped", p)
		}
	}
	if left := processesOf(tmp, redisPorts); len(left) > 0 {
		t.Errorf("processes left running after run-cluster stopped: %q", left)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "seckill-cluster.*")); len(left) > 0 {
		t.Errorf("scratch directory left behind: %q", left)
	}
}
