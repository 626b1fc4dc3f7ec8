package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"seckill/internal/testenv"
)

// process is the server binary running as a child process.
type process struct {
	t   *testing.T
	bin string
	env []string
	url string
	cmd *exec.Cmd
	out testenv.Buffer
}

func buildServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "seckill")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (p *process) start() {
	p.t.Helper()
	p.cmd = exec.Command(p.bin)
	p.cmd.Env = append(os.Environ(), p.env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	eventually(p.t, 30*time.Second, "server ready", func() bool {
		resp, err := http.Get(p.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func (p *process) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

// TestKillMidStorm kills the server with SIGKILL in the middle of a storm
// and starts it again: no answered token is lost, nothing is oversold, and
// once the leases of the dead process have run out the sale ends with
// exactly the stock issued and recorded.
func TestKillMidStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	const stockN, demand = 300, 5000
	b := newBroker(t)
	cfg := kafkaConfig(t, b)
	addr := freeAddr(t)
	p := &process{t: t, bin: buildServer(t), url: "http://" + addr, env: []string{
		"SECKILL_HTTP_ADDR=" + addr,
		"SECKILL_REDIS_ADDR=" + testenv.RedisAddr(),
		"SECKILL_REDIS_PREFIX=" + cfg.RedisPrefix,
		"SECKILL_MYSQL_DSN=" + cfg.MySQLDSN,
		"SECKILL_KAFKA_BROKERS=" + b.addr(),
		"SECKILL_KAFKA_TOPIC=" + cfg.KafkaTopic,
		"SECKILL_ADMIN_TOKEN=" + cfg.AdminToken,
		"SECKILL_LEASE=2s",
		"SECKILL_JOB_INTERVAL=200ms",
		"SECKILL_LOG_LEVEL=warn",
	}}
	p.start()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("server output:\n%s", p.out.String())
		}
	})
	admin := &App{cfg: cfg, adminToken: cfg.AdminToken, ln: fakeListener(addr)}
	id := openActivity(t, admin, stockN, 1)
	h := recordHistory(t, p.url, id, stockN, 1)

	// The storm: 5,000 joins, 200 at a time; the server is killed once 100
	// tokens have been answered.
	var answered atomic.Int64
	var once sync.Once
	answers := make([]joinAnswer, demand)
	sem := make(chan struct{}, 200)
	var wg sync.WaitGroup
	for i := range demand {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			a := joinHTTP(p.url, id, fmt.Sprintf("storm%d", i))
			answers[i] = a
			if a.status == http.StatusOK && answered.Add(1) == 100 {
				once.Do(p.kill)
			}
		}()
	}
	wg.Wait()
	once.Do(p.kill) // in case the storm ended first
	before := tokens(t, answers)
	t.Logf("%d tokens answered before and around the kill", len(before))
	if len(before) < 100 || len(before) > stockN {
		t.Fatalf("%d tokens answered before the kill", len(before))
	}

	// Started again, with demand continuing until the sale is over.
	p.start()
	all := before
	sellOut(t, p.url, admin, id, stockN, all)
	// Exactly the stock is issued and recorded. Joins confirmed by the
	// killed process whose answer died with it are valid tokens too, so the
	// tokens answered with 200 are at most the stock.
	converged(t, admin, id, stockN, stockN)
	t.Logf("%d tokens answered with 200; %d issued while their answer died with the process", len(all), stockN-len(all))
	checkTokens(t, p.url, all)
	h.check(t)
}

// fakeListener lets the test helpers that take an *App talk to the child
// process: they only need its URL and admin token.
func fakeListener(addr string) net.Listener { return addrListener(addr) }

type addrListener string

func (addrListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (addrListener) Close() error              { return nil }
func (a addrListener) Addr() net.Addr {
	ta, _ := net.ResolveTCPAddr("tcp", string(a))
	return ta
}
