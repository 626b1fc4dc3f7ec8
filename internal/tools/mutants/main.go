// Command mutants checks that the tests of a package notice the bugs we can
// imagine in it. It reads a list of one-line mutants (by default the Lua
// scripts' list, stock/testdata/lua-mutants.txt), and for each one copies
// the module, without .git, into a directory of its own, makes the change
// there and runs the package's tests:
//
//	go run ./internal/tools/mutants [-pkg dir] [-list file] [-run regexp] [-timeout d] [-j n]
//
// A mutant is killed when the tests fail, and survives when they pass. It
// prints one line per mutant and a score, and exits 1 when a mutant
// survived or could not be run. The unchanged module is tested first: a
// failure there would make every mutant look killed.
//
// The list is made of blocks separated by blank lines:
//
//	# confirm.lua without the lease check: a ghost claim is issued
//	confirm.lua
//	- if not redis.call('ZSCORE', KEYS[1], member) then
//	+ if false then
//
// In a mutant, the "#" lines name the bug, the next line is a file of the
// package's directory (-pkg), "- " is followed by text that must occur
// exactly once in that file and "+ " by what replaces it (nothing, to
// delete it). Only the one space after the sign is taken off. A block of
// "#" lines alone is a note.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// mutant is one change to one file of the package.
type mutant struct {
	n        int    // its place in the list, from 1
	line     int    // the line of the list it starts on
	file     string // relative to the package's directory
	bug      string // the "#" comment
	old, new string
}

func (m mutant) name() string { return fmt.Sprintf("%02d %s: %s", m.n, m.file, m.bug) }

// result is what the tests made of a mutant.
type result struct {
	killed bool
	err    error    // the tests could not be run, or did not build
	failed []string // the tests that failed
	took   time.Duration
}

func main() {
	pkg := flag.String("pkg", "stock", "the package's directory, relative to the module root")
	list := flag.String("list", "stock/testdata/lua-mutants.txt", "the mutant list, relative to the module root")
	run := flag.String("run", "", "only the mutants whose line (number, file and bug) matches this regexp")
	timeout := flag.Duration("timeout", 3*time.Minute, "the longest one run of the package's tests may take")
	jobs := flag.Int("j", 1, "how many mutants to test at once")
	flag.Parse()
	if err := mainErr(filepath.Clean(*pkg), *list, *run, *timeout, *jobs); err != nil {
		if !errors.Is(err, errSurvived) {
			fmt.Fprintln(os.Stderr, "mutants:", err)
		}
		os.Exit(1)
	}
}

// errSurvived: the score line says it all.
var errSurvived = errors.New("a mutant survived or was not run")

func mainErr(pkg, listPath, run string, timeout time.Duration, jobs int) error {
	start := time.Now()
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if !filepath.IsAbs(listPath) {
		listPath = filepath.Join(root, listPath)
	}
	ms, err := readList(listPath)
	if err != nil {
		return err
	}
	// Every mutant must apply to the module as it is, before anything runs.
	for _, m := range ms {
		if _, err := apply(filepath.Join(root, pkg), m); err != nil {
			return fmt.Errorf("%s:%d: %w", listPath, m.line, err)
		}
	}
	if run != "" {
		re, err := regexp.Compile(run)
		if err != nil {
			return fmt.Errorf("-run: %w", err)
		}
		ms = slices.DeleteFunc(ms, func(m mutant) bool { return !re.MatchString(m.name()) })
	}
	if len(ms) == 0 {
		return errors.New("no mutant selected")
	}
	jobs = max(1, min(jobs, len(ms)))

	// Interrupted, the runs stop and take their redis-servers with them.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	work, err := os.MkdirTemp("", "mutants-")
	if err != nil {
		return err
	}
	defer func() {
		if err := os.RemoveAll(work); err != nil {
			fmt.Fprintf(os.Stderr, "mutants: removing %s: %v\n", work, err)
		}
	}()
	// The module as it is now: what is edited during the run is not tested.
	src := filepath.Join(work, "src")
	if err := copyModule(root, src); err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	// Each worker copies the module to the same path every time, so that
	// the build cache (shared with the user's) holds the packages that do
	// not change and only the package and what imports it are compiled
	// again.
	dirs := make([]string, jobs)
	for i := range dirs {
		dirs[i] = filepath.Join(work, fmt.Sprint(i), filepath.Base(root))
	}

	base := testCopy(ctx, src, dirs[0], pkg, nil, timeout)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if base.err != nil || base.killed {
		return fmt.Errorf("the %s tests fail without a mutant (%v, failed: %s): fix that first", pkg, base.err, strings.Join(base.failed, " "))
	}
	fmt.Printf("unmutated: the %s tests pass (%s)\n", pkg, base.took.Round(100*time.Millisecond))

	results := make([]result, len(ms))
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for w := range jobs {
		wg.Go(func() {
			for i := range next {
				if ctx.Err() != nil {
					continue
				}
				r := testCopy(ctx, src, dirs[w], pkg, &ms[i], timeout)
				if ctx.Err() != nil {
					continue
				}
				results[i] = r
				mu.Lock()
				fmt.Println(line(ms[i], r))
				mu.Unlock()
			}
		})
	}
	for i := range ms {
		select {
		case next <- i:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}

	killed, survived, broken := 0, 0, 0
	for _, r := range results {
		switch {
		case r.err != nil:
			broken++
		case r.killed:
			killed++
		default:
			survived++
		}
	}
	fmt.Printf("score: %d/%d mutants killed (%.1f%%), %d survived, %d not run, in %s\n",
		killed, len(ms), 100*float64(killed)/float64(len(ms)), survived, broken, time.Since(start).Round(time.Second))
	if survived+broken > 0 {
		return errSurvived
	}
	return nil
}

func line(m mutant, r result) string {
	took := r.took.Round(100 * time.Millisecond)
	switch {
	case r.err != nil:
		return fmt.Sprintf("ERROR    %s (%s): %v", m.name(), took, r.err)
	case r.killed:
		return fmt.Sprintf("killed   %s (%s) by %s", m.name(), took, strings.Join(r.failed, " "))
	default:
		return fmt.Sprintf("SURVIVED %s (%s)", m.name(), took)
	}
}

// moduleRoot is the directory of the go.mod above the working directory.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside a Go module")
	}
	return filepath.Dir(mod), nil
}

// readList parses the mutant list.
func readList(path string) ([]mutant, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read only: a failed close loses nothing
	var (
		ms  []mutant
		cur mutant
		at  int // the line cur starts on, 0 when none
		sc  = bufio.NewScanner(f)
		n   = 0
	)
	flush := func() error {
		if at == 0 {
			return nil
		}
		switch {
		case cur.file == "" && cur.old == "":
			// Comment lines alone: a note on the list, not a mutant.
			cur, at = mutant{}, 0
			return nil
		case cur.bug == "":
			return fmt.Errorf("%s:%d: a mutant without a # comment naming its bug", path, at)
		case cur.file == "":
			return fmt.Errorf("%s:%d: a mutant without a file", path, at)
		case cur.old == "":
			return fmt.Errorf("%s:%d: a mutant without a - line", path, at)
		case cur.old == cur.new:
			return fmt.Errorf("%s:%d: a mutant that changes nothing", path, at)
		}
		cur.n, cur.line = len(ms)+1, at
		ms = append(ms, cur)
		cur, at = mutant{}, 0
		return nil
	}
	seenNew := false
	for sc.Scan() {
		n++
		text := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" {
			if err := flush(); err != nil {
				return nil, err
			}
			seenNew = false
			continue
		}
		if at == 0 {
			at = n
		}
		switch {
		case strings.HasPrefix(text, "#"):
			if cur.file != "" {
				return nil, fmt.Errorf("%s:%d: a comment after the file: separate mutants by a blank line", path, n)
			}
			cur.bug = strings.TrimSpace(cur.bug + " " + strings.TrimSpace(strings.TrimPrefix(text, "#")))
		case strings.HasPrefix(text, "- ") || text == "-":
			if cur.old != "" {
				return nil, fmt.Errorf("%s:%d: a second - line (one line a mutant)", path, n)
			}
			cur.old = strings.TrimPrefix(strings.TrimPrefix(text, "-"), " ")
		case strings.HasPrefix(text, "+ ") || text == "+":
			if cur.old == "" || seenNew {
				return nil, fmt.Errorf("%s:%d: a + line must follow one - line", path, n)
			}
			cur.new, seenNew = strings.TrimPrefix(strings.TrimPrefix(text, "+"), " "), true
		case cur.file == "":
			cur.file = strings.TrimSpace(text)
		default:
			return nil, fmt.Errorf("%s:%d: cannot read %q", path, n, text)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return ms, nil
}

// apply returns the file of the package's directory dir with m made, or
// an error when m.old does not occur exactly once in it.
func apply(dir string, m mutant) ([]byte, error) {
	if filepath.Base(m.file) != m.file {
		return nil, fmt.Errorf("%q: name a file of the package, without a directory", m.file)
	}
	src, err := os.ReadFile(filepath.Join(dir, m.file))
	if err != nil {
		return nil, err
	}
	if c := bytes.Count(src, []byte(m.old)); c != 1 {
		return nil, fmt.Errorf("%s: %q occurs %d times, want exactly once", m.file, m.old, c)
	}
	return bytes.Replace(src, []byte(m.old), []byte(m.new), 1), nil
}

// testCopy copies the module at root to dir (emptied first), makes m there
// (none when nil), and runs the tests of pkg in it.
func testCopy(parent context.Context, root, dir, pkg string, m *mutant, timeout time.Duration) result {
	start := time.Now()
	fail := func(err error) result { return result{err: err, took: time.Since(start)} }
	if err := os.RemoveAll(dir); err != nil {
		return fail(err)
	}
	if err := copyModule(root, dir); err != nil {
		return fail(fmt.Errorf("copy: %w", err))
	}
	if m != nil {
		src, err := apply(filepath.Join(dir, pkg), *m)
		if err != nil {
			return fail(err)
		}
		if err := os.WriteFile(filepath.Join(dir, pkg, m.file), src, 0o644); err != nil {
			return fail(err)
		}
	}

	// go test stops itself after timeout; the context is there in case it
	// cannot (a test binary that ignores the signal).
	ctx, cancel := context.WithTimeout(parent, timeout+time.Minute)
	defer cancel()
	// The protocol model (stock) checks the design, not the code: it is
	// left out, as gremlins leaves it out with -tags mutate.
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-tags", "mutate",
		"-timeout", timeout.String(), "./"+filepath.ToSlash(pkg)+"/")
	cmd.Dir = dir
	// Its own process group, so that the redis-servers of the tests go with
	// it when it is stopped.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	r := result{took: time.Since(start), failed: failedTests(out.String())}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		r.killed, r.failed = true, append(r.failed, "(timeout)")
	case errors.As(err, &exit) && strings.Contains(out.String(), "[build failed]"),
		errors.As(err, &exit) && strings.Contains(out.String(), "[setup failed]"):
		r.err = fmt.Errorf("the tests did not build:\n%s", out.String())
	case errors.As(err, &exit):
		r.killed = true
		if strings.Contains(out.String(), "panic: test timed out") {
			r.failed = append(r.failed, "(timeout)")
		}
	default:
		r.err = err
	}
	return r
}

var failRE = regexp.MustCompile(`(?m)^\s*--- FAIL: (\S+)`)

// failedTests lists the top-level tests that failed in go test's output.
func failedTests(out string) []string {
	var names []string
	for _, m := range failRE.FindAllStringSubmatch(out, -1) {
		name, _, _ := strings.Cut(m[1], "/")
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}

// copyModule copies the files of the module at root to dir, but for .git.
func copyModule(root, dir string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if d.Name() == ".git" {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil // a worktree's .git is a file
		}
		to := filepath.Join(dir, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, to)
		case !d.Type().IsRegular():
			return nil
		}
		return copyFile(path, to)
	})
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }() // read only: a failed close loses nothing
	info, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close() // the copy failed already: that is the error to tell
		return err
	}
	return out.Close()
}
