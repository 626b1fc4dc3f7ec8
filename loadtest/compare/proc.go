package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// child is a server process started by the harness: the baseline server or
// the service.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	err     error
}

// startChild starts bin with args and env, its output in logPath. The child
// gets SIGTERM should the harness die without stopping it.
func startChild(name, bin string, args, env []string, logPath string) (*child, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	// A process group of its own: a Ctrl-C reaches the harness only, which
	// stops its children in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		_ = logf.Close() // the start's error is the one to tell
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		_ = logf.Close() // the child has exited: nothing more is written
		close(c.exited)
	}()
	return c, nil
}

// waitReady polls url until it answers 200, the child exits or the timeout
// passes.
func (c *child) waitReady(ctx context.Context, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	return c.waitFor(ctx, "answer "+url, timeout, func() bool {
		res, err := client.Get(url)
		if err != nil {
			return false
		}
		_ = res.Body.Close() // a health check: only the status counts
		return res.StatusCode == http.StatusOK
	})
}

// waitListening waits until addr accepts TCP connections, the child exits
// or the timeout passes.
func (c *child) waitListening(ctx context.Context, addr string, timeout time.Duration) error {
	return c.waitFor(ctx, "listen on "+addr, timeout, func() bool {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		_ = conn.Close() // only the connection's success counts
		return true
	})
}

// waitFor polls ready every 100 ms until it reports true, the child exits
// or the timeout passes; what says what was waited for.
func (c *child) waitFor(ctx context.Context, what string, timeout time.Duration, ready func() bool) error {
	deadline := time.Now().Add(timeout)
	for !ready() {
		select {
		case <-c.exited:
			return fmt.Errorf("%s exited at start (%v):\n%s", c.name, c.err, c.logTail(20))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not %s within %v:\n%s", c.name, what, timeout, c.logTail(20))
		}
	}
	return nil
}

// gone returns an error describing how the child ended when it exited, nil
// while it runs.
func (c *child) gone() error {
	select {
	case <-c.exited:
		return fmt.Errorf("%s exited (%v):\n%s", c.name, c.err, c.logTail(10))
	default:
		return nil
	}
}

// stop sends SIGTERM and waits up to timeout, then kills the child.
func (c *child) stop(timeout time.Duration) error {
	select {
	case <-c.exited:
		return nil
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		var ee *exec.ExitError
		if c.err != nil && !errors.As(c.err, &ee) {
			return c.err
		}
		return nil
	case <-time.After(timeout):
		_ = c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("%s did not stop within %v: killed", c.name, timeout)
	}
}

func (c *child) logTail(lines int) string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return ""
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return "  | " + strings.Join(ls, "\n  | ")
}

// freeAddr returns a free 127.0.0.1 address.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = ln.Close() }() // only its port was wanted
	return "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), nil
}

// cleanEnv returns the environment without any SECKILL_ variable, so only
// what the harness sets reaches the service.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SECKILL_") {
			env = append(env, kv)
		}
	}
	return env
}
