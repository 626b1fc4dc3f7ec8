package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// The operations pack: deploy/prometheus (config, alerts and their tests)
// and deploy/grafana (dashboard and provisioning), wired into
// docker-compose.yml.
const (
	promDir     = "../../deploy/prometheus"
	alertsFile  = promDir + "/alerts.yml"
	alertsTests = promDir + "/alerts_test.yml"
	dashboard   = "../../deploy/grafana/seckill.json"
)

// promTool finds name on PATH (Debian's prometheus package, which
// scripts/services.sh installs): in CI its absence fails the test, elsewhere
// it skips it.
func promTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found on PATH: scripts/services.sh installs it (apt-get install prometheus)", name)
	}
	t.Skipf("%s not found on PATH: run scripts/services.sh (apt-get install prometheus) to test the operations pack", name)
	return ""
}

type alertRule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

func readAlerts(t *testing.T) []alertRule {
	t.Helper()
	var f struct {
		Groups []struct {
			Rules []alertRule `json:"rules"`
		} `json:"groups"`
	}
	readYAML(t, alertsFile, &f)
	var rules []alertRule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules
}

func readYAML(t *testing.T, path string, out any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func dashboardQueries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dashboard)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboard, err)
	}
	var qs []string
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			qs = append(qs, q.Expr)
		}
	}
	if len(qs) == 0 {
		t.Fatal("the dashboard has no query")
	}
	return qs
}

// TestOperationsPackRules: every alert is complete and points at the
// README's troubleshooting section, promtool accepts the rules and their
// unit tests pass, and every alert has a test where it fires and one where
// it stays quiet.
func TestOperationsPackRules(t *testing.T) {
	promtool := promTool(t, "promtool")
	rules := readAlerts(t)
	if len(rules) < 8 {
		t.Errorf("%d alerts, want at least 8", len(rules))
	}
	for _, r := range rules {
		if r.Alert == "" || r.Expr == "" || r.For == "" || r.Labels["severity"] == "" ||
			r.Annotations["summary"] == "" || !strings.Contains(r.Annotations["description"], "README.md#troubleshooting") {
			t.Errorf("alert %q: want expr, for, labels.severity, annotations.summary and a description linking README.md#troubleshooting", r.Alert)
		}
	}
	for _, args := range [][]string{
		{"check", "rules", alertsFile},
		{"test", "rules", alertsTests},
		{"check", "config", promDir + "/prometheus.yml"},
	} {
		if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `json:"alertname"`
				ExpAlerts []map[string]any `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	readYAML(t, alertsTests, &tests)
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for _, r := range rules {
		if !fires[r.Alert] || !quiet[r.Alert] {
			t.Errorf("alert %s: alerts_test.yml wants a test where it fires (%v) and one where it stays quiet (%v)", r.Alert, fires[r.Alert], quiet[r.Alert])
		}
	}
}

// TestOperationsPackPrometheus: a real Prometheus scrapes a running server
// that has taken a join, loads the alerts, and answers a query of the join
// counter; every metric an alert or a dashboard query names is one the
// server exports.
func TestOperationsPackPrometheus(t *testing.T) {
	prometheusBin := promTool(t, "prometheus")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cfg := testConfig(t)
	cfg.JobInterval = 100 * time.Millisecond
	app := startApp(t, cfg)
	id := openActivity(t, app, 10, 1)
	if a := joinHTTP(app.URL(), id, "u-ops"); a.status != http.StatusOK {
		t.Fatalf("join: %d %s", a.status, a.code)
	}

	// Every name the pack uses, exported by the server once the join has
	// gone through the consumer and the job has run a cycle.
	used := map[string][]string{} // metric name → where it is used
	for _, r := range readAlerts(t) {
		for _, n := range metricNames(r.Expr) {
			used[n] = append(used[n], "alert "+r.Alert)
		}
	}
	for _, q := range dashboardQueries(t) {
		for _, n := range metricNames(q) {
			used[n] = append(used[n], "dashboard")
		}
	}
	var missing []string
	scrapeBy := time.Now().Add(10 * time.Second)
	for {
		exported := scrapeNames(t, app.URL()+"/metrics")
		missing = missing[:0]
		for n := range used {
			if !exported[n] {
				missing = append(missing, n)
			}
		}
		if len(missing) == 0 || time.Now().After(scrapeBy) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	slices.Sort(missing)
	for _, n := range missing {
		t.Errorf("%s is used by %s but the server does not export it", n, strings.Join(slices.Compact(used[n]), ", "))
	}

	// A Prometheus of the test's own on a free port.
	alerts, err := filepath.Abs(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	config := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [%q]\nscrape_configs:\n  - job_name: seckill\n    static_configs:\n      - targets: [%q]\n", alerts, app.Addr())
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	var logs bytes.Buffer
	cmd := exec.Command(prometheusBin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("prometheus:\n%s", logs.String())
		}
	})

	base := "http://" + addr
	var joins struct {
		Data struct {
			Result []struct {
				Value []any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	for len(joins.Data.Result) == 0 {
		select {
		case <-exited:
			t.Fatal("prometheus exited")
		case <-ctx.Done():
			t.Fatalf("no answer to seckill_joins_total{outcome=\"ok\"} from prometheus within 30 s")
		case <-time.After(200 * time.Millisecond):
		}
		_ = getJSON(base+"/api/v1/query?query="+url.QueryEscape(`seckill_joins_total{outcome="ok"}`), &joins)
	}
	if v := joins.Data.Result[0].Value; len(v) != 2 || v[1] != "1" {
		t.Errorf("seckill_joins_total{outcome=\"ok\"} = %v, want 1", v)
	}

	var loaded struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name   string `json:"name"`
					Health string `json:"health"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := getJSON(base+"/api/v1/rules", &loaded); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range loaded.Data.Groups {
		for _, r := range g.Rules {
			names = append(names, r.Name)
			if r.Health == "err" {
				t.Errorf("rule %s fails to evaluate", r.Name)
			}
		}
	}
	for _, r := range readAlerts(t) {
		if !slices.Contains(names, r.Alert) {
			t.Errorf("prometheus did not load the alert %s (loaded %v)", r.Alert, names)
		}
	}
}

// TestComposeOperations: docker-compose.yml runs Prometheus on the pack's
// config and alerts, scraping the service, and Grafana with the data source
// and the dashboard provisioned; every file mounted exists.
func TestComposeOperations(t *testing.T) {
	var c struct {
		Services map[string]struct {
			Image   string   `json:"image"`
			Volumes []string `json:"volumes"`
		} `json:"services"`
	}
	readYAML(t, "../../docker-compose.yml", &c)
	mounts := map[string]string{} // container path → host path
	for _, name := range []string{"prometheus", "grafana"} {
		s, ok := c.Services[name]
		if !ok {
			t.Errorf("docker-compose.yml has no %s service", name)
			continue
		}
		if !strings.HasPrefix(imageRepo(s.Image), map[string]string{"prometheus": "prom/prometheus", "grafana": "grafana/grafana"}[name]) {
			t.Errorf("service %s: image %s", name, s.Image)
		}
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if !strings.HasPrefix(parts[0], "./") {
				continue // a named volume
			}
			if _, err := os.Stat(filepath.Join("../..", parts[0])); err != nil {
				t.Errorf("service %s mounts %s: %v", name, parts[0], err)
			}
			mounts[parts[1]] = parts[0]
		}
	}
	for container, host := range map[string]string{
		"/etc/prometheus":                          "./deploy/prometheus",
		"/etc/grafana/provisioning":                "./deploy/grafana/provisioning",
		"/var/lib/grafana/dashboards/seckill.json": "./deploy/grafana/seckill.json",
	} {
		if mounts[container] != host {
			t.Errorf("docker-compose.yml mounts %q at %s, want %s", mounts[container], container, host)
		}
	}

	var prom struct {
		RuleFiles     []string `json:"rule_files"`
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `json:"targets"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	readYAML(t, promDir+"/prometheus.yml", &prom)
	if !slices.Contains(prom.RuleFiles, "alerts.yml") {
		t.Errorf("deploy/prometheus/prometheus.yml does not load alerts.yml: %v", prom.RuleFiles)
	}
	scraped := false
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			scraped = scraped || slices.Contains(st.Targets, "seckill:8080")
		}
	}
	if !scraped {
		t.Error("deploy/prometheus/prometheus.yml does not scrape seckill:8080")
	}

	var ds struct {
		Datasources []struct{ Type, URL string } `json:"datasources"`
	}
	readYAML(t, "../../deploy/grafana/provisioning/datasources/prometheus.yml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("the Grafana data source is not the compose Prometheus: %+v", ds.Datasources)
	}
	var dp struct {
		Providers []struct {
			Options struct{ Path string } `json:"options"`
		} `json:"providers"`
	}
	readYAML(t, "../../deploy/grafana/provisioning/dashboards/seckill.yml", &dp)
	if len(dp.Providers) != 1 || dp.Providers[0].Options.Path != "/var/lib/grafana/dashboards" {
		t.Errorf("the Grafana dashboard provider does not read the mounted dashboard: %+v", dp.Providers)
	}
}

var (
	promStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promToken    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true}
)

// metricNames are the metric names a PromQL expression selects: its
// identifiers less strings, matchers, ranges, grouping labels, functions
// and aggregations (an identifier before "(") and keywords.
func metricNames(expr string) []string {
	e := promStrings.ReplaceAllString(expr, `""`)
	e = promMatchers.ReplaceAllString(e, " ")
	e = promGrouping.ReplaceAllString(e, " ")
	var names []string
	for _, m := range promToken.FindAllStringSubmatch(e, -1) {
		if m[1] != "" || promKeywords[strings.ToLower(m[0])] {
			continue
		}
		names = append(names, m[0])
	}
	return names
}

// scrapeNames are the series names a /metrics page exports: each family's
// name, and a histogram's or a summary's _bucket, _sum and _count.
func scrapeNames(t *testing.T, u string) map[string]bool {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 4 && f[0] == "#" && f[1] == "TYPE":
			// A family's TYPE line is there only once it has a series.
			names[f[2]] = true
			if f[3] == "histogram" || f[3] == "summary" {
				names[f[2]+"_sum"], names[f[2]+"_count"] = true, true
				names[f[2]+"_bucket"] = f[3] == "histogram"
			}
		case len(f) > 0 && f[0] != "#":
			names[strings.SplitN(f[0], "{", 2)[0]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

func getJSON(u string, out any) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}
