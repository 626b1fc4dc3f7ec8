package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisServer is a redis-server process of the test's own, which the test
// may flush, restart, kill or freeze without touching the shared one.
type RedisServer struct {
	t    testing.TB
	Port int
	dir  string
	args []string
	cmd  *exec.Cmd
}

// StartRedis starts a redis-server on a free port, by default without
// persistence; it is stopped when the test ends. Extra arguments are passed
// on after the defaults, so they may turn persistence on (for example
// "--appendonly", "yes") or set anything else ("--cluster-enabled", "yes").
func StartRedis(t testing.TB, args ...string) *RedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("testenv: redis-server not found: %v (scripts/services.sh installs it)", err)
	}
	s := &RedisServer{t: t, Port: freePort(t), dir: t.TempDir(), args: append([]string{bin}, args...)}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer closeLogged(t, "listener", ln)
	return ln.Addr().(*net.TCPAddr).Port
}

// Addr is the server's address.
func (s *RedisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// Dir is the server's working directory: its RDB and AOF files, and the
// nodes.conf of a cluster node. Start uses the same one every time.
func (s *RedisServer) Dir() string { return s.dir }

// Start starts the server (again) on its port and directory and waits until
// it answers; a server with persistence comes back with what its files
// hold.
func (s *RedisServer) Start() {
	s.t.Helper()
	args := []string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", s.dir, "--logfile", filepath.Join(s.dir, "redis.log")}
	args = append(args, s.args[1:]...)
	s.cmd = exec.Command(s.args[0], args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("testenv: start redis-server: %v", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer closeLogged(s.t, "redis", rdb)
	deadline := time.Now().Add(10 * time.Second)
	// A server loading its files answers LOADING until it is done.
	for rdb.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			s.t.Fatalf("testenv: redis-server on %s did not answer", s.Addr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server with SIGKILL, frozen or not: what it had not written
// to its files is gone, as after a crash; without persistence, everything.
func (s *RedisServer) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// Restart kills the server and starts it again on the same directory.
func (s *RedisServer) Restart() {
	s.t.Helper()
	s.Stop()
	s.Start()
}

// Pause freezes the server with SIGSTOP: its connections stay open and
// nothing answers, as a server stuck on a slow disk or a lost network. A
// replica stops reading its master's stream and falls behind.
func (s *RedisServer) Pause() { s.signal(syscall.SIGSTOP) }

// Resume lets a paused server run again (SIGCONT).
func (s *RedisServer) Resume() { s.signal(syscall.SIGCONT) }

func (s *RedisServer) signal(sig syscall.Signal) {
	s.t.Helper()
	if s.cmd == nil || s.cmd.Process == nil {
		s.t.Fatalf("testenv: %s is not running", s)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("testenv: %s: %v: %v", s, sig, err)
	}
}

// String names the server in messages.
func (s *RedisServer) String() string { return fmt.Sprintf("redis-server %s", s.Addr()) }

// AOFPoint is how far the append-only file of a server reached at one
// moment.
type AOFPoint struct {
	path string
	size int64
}

// MarkAOF records how far the server's append-only file (Redis 7: the
// incremental file named in appendonlydir's manifest) reaches now, as if the
// server's last fsync happened now. The server must run with
// "--appendonly", "yes" and without automatic rewrites
// ("--auto-aof-rewrite-percentage", "0"), so that the file is only appended
// to.
func (s *RedisServer) MarkAOF() AOFPoint {
	s.t.Helper()
	files, err := filepath.Glob(filepath.Join(s.dir, "appendonlydir", "*.incr.aof"))
	if err != nil || len(files) != 1 {
		s.t.Fatalf("testenv: %s: want one incremental AOF file, found %v (%v)", s, files, err)
	}
	fi, err := os.Stat(files[0])
	if err != nil {
		s.t.Fatal(err)
	}
	return AOFPoint{path: files[0], size: fi.Size()}
}

// LoseUnsynced cuts the append-only file of a stopped server back to p: what
// an appendfsync everysec server loses when the machine dies after an fsync
// and before the next one (a SIGKILL alone loses nothing, the kernel still
// holds the writes). A command cut in half at p is dropped by Redis at load
// (aof-load-truncated yes, the default). It returns how many bytes were
// cut.
func (s *RedisServer) LoseUnsynced(p AOFPoint) int64 {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatalf("testenv: %s: LoseUnsynced on a running server", s)
	}
	fi, err := os.Stat(p.path)
	if err != nil {
		s.t.Fatalf("testenv: %s: the AOF file marked is gone (rewritten?): %v", s, err)
	}
	if fi.Size() < p.size {
		s.t.Fatalf("testenv: %s: the AOF file shrank from %d to %d bytes (rewritten?)", s, p.size, fi.Size())
	}
	if err := os.Truncate(p.path, p.size); err != nil {
		s.t.Fatal(err)
	}
	return fi.Size() - p.size
}
