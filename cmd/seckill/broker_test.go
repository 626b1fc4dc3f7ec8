package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"seckill/internal/testenv"
	"seckill/mq"
)

// brokerProcess is seckill broker running as a child process.
type brokerProcess struct {
	cmd  *exec.Cmd
	addr string
	out  testenv.Buffer
	done chan error
}

// startBrokerProcess runs bin broker on a free address with its data in
// dir, and returns once it says where it listens.
func startBrokerProcess(t *testing.T, bin, dir string, env ...string) *brokerProcess {
	t.Helper()
	b := &brokerProcess{addr: freeAddr(t), done: make(chan error, 1)}
	b.cmd = exec.Command(bin, "broker")
	b.cmd.Env = append(os.Environ(), append([]string{
		"SECKILL_BROKER_ADDR=" + b.addr, "SECKILL_KAFKA_DATA_DIR=" + dir}, env...)...)
	b.cmd.Stdout, b.cmd.Stderr = &b.out, &b.out
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	t.Cleanup(func() {
		_ = b.cmd.Process.Kill()
		<-b.done
		if t.Failed() {
			t.Logf("broker output:\n%s", b.out.String())
		}
	})
	eventually(t, 30*time.Second, "broker listening", func() bool {
		return strings.Contains(b.out.String(), "listening on "+b.addr)
	})
	return b
}

// stop sends SIGTERM and returns the exit code.
func (b *brokerProcess) stop(t *testing.T) int {
	t.Helper()
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
		b.done <- nil // for the cleanup
	case <-time.After(15 * time.Second):
		t.Fatal("seckill broker did not stop within 15 s of SIGTERM")
	}
	return b.cmd.ProcessState.ExitCode()
}

// TestBrokerCommand: two servers share one seckill broker; the topics get
// the partitions of SECKILL_KAFKA_PARTITIONS; every token of a sale spread
// over both reaches MySQL; SIGTERM stops the broker cleanly, and started
// again on its data directory it still has the topics. A second broker on
// the same address fails with one line.
func TestBrokerCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	bin := buildServer(t)
	dir := t.TempDir()
	b := startBrokerProcess(t, bin, dir)
	if !strings.Contains(b.out.String(), "for development and tests") {
		t.Errorf("the broker does not say it is for development and tests:\n%s", b.out.String())
	}

	cfg := testConfig(t)
	cfg.KafkaBrokers = []string{b.addr}
	cfg.KafkaTopic = "seckill.shared"
	cfg.KafkaPartitions = 3
	cfg.JobInterval = 100 * time.Millisecond
	apps := []*App{startApp(t, cfg), startApp(t, cfg)}
	if apps[0].embedded != nil || apps[1].embedded != nil {
		t.Fatal("a server started its own embedded broker although SECKILL_KAFKA_BROKERS is set")
	}
	states, err := mq.EnsureTopics(mq.Config{Brokers: cfg.KafkaBrokers, Topic: cfg.KafkaTopic}, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range states {
		if st.Created || st.Partitions != 3 || len(st.Problems) > 0 {
			t.Errorf("topic %s: created now %v, %d partitions, problems %q; want made by the servers with 3",
				st.Name, st.Created, st.Partitions, st.Problems)
		}
	}

	const stockN = 20
	id := openActivity(t, apps[0], stockN, 1)
	var answers []joinAnswer
	for i := range stockN {
		answers = append(answers, joinHTTP(apps[i%2].URL(), id, fmt.Sprint("shared", i)))
	}
	got := tokens(t, answers)
	if len(got) != stockN {
		t.Fatalf("%d tokens for %d joins on a stock of %d", len(got), stockN, stockN)
	}
	converged(t, apps[1], id, stockN, stockN)
	for _, a := range apps {
		shutdown(t, a)
	}

	if code := b.stop(t); code != 0 {
		t.Fatalf("seckill broker exited %d on SIGTERM, want 0:\n%s", code, b.out.String())
	}
	again := startBrokerProcess(t, bin, dir)
	states, err = mq.EnsureTopics(mq.Config{Brokers: []string{again.addr}, Topic: cfg.KafkaTopic}, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range states {
		if st.Created || st.Partitions != 3 {
			t.Errorf("topic %s after a restart: created now %v, %d partitions; want kept with 3", st.Name, st.Created, st.Partitions)
		}
	}

	taken := exec.Command(bin, "broker")
	taken.Env = append(os.Environ(), "SECKILL_BROKER_ADDR="+again.addr, "SECKILL_KAFKA_DATA_DIR="+t.TempDir())
	var stderr bytes.Buffer
	taken.Stderr = &stderr
	err = taken.Run()
	if taken.ProcessState.ExitCode() != 1 {
		t.Fatalf("a broker on a taken address: %v, want exit 1\n%s", err, stderr.String())
	}
	last := strings.TrimSpace(stderr.String())
	last = last[strings.LastIndex(last, "\n")+1:]
	if !strings.HasPrefix(last, "seckill: ") || !strings.Contains(last, again.addr) || !strings.Contains(last, "SECKILL_BROKER_ADDR") {
		t.Errorf("a broker on a taken address says %q; want one line naming the address and SECKILL_BROKER_ADDR", last)
	}
}
