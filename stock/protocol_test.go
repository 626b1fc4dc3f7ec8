// The model checks protocol.pml, not the Go code: mutation runs (make
// mutate, -tags mutate) leave it out.

//go:build !mutate

package stock_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestProtocolModel has spin search every interleaving of the slot protocol
// model (protocol.pml) for an oversell, two tokens on one slot, a user over
// the limit and a 200 settled void or lost. The variants that leave out a
// part of the protocol must fail: they show that the model can find what it
// looks for.
//
// It needs spin and a C compiler (scripts/services.sh installs spin). Without
// them the test fails in CI and is skipped elsewhere. SECKILL_MODEL_DEEP=1
// adds the longer searches (two Redis losses, a rebuild dying, the loss of the
// last writes, the token-fenced rebuild).
func TestProtocolModel(t *testing.T) {
	spin, cc := modelTools(t)
	model, err := os.ReadFile("protocol.pml")
	if err != nil {
		t.Fatal(err)
	}
	type run struct {
		name  string
		flags []string
		fail  bool // spin must find a violation
		deep  bool // only with SECKILL_MODEL_DEEP=1
	}
	runs := []run{
		{name: "design", flags: nil},
		// Each of these leaves out one part of the protocol the model
		// assumes, and spin must find what goes wrong without it.
		{name: "old rebuild settles every pending record valid", flags: []string{"-DOLD_REBUILD"}, fail: true},
		{name: "rules (a) and (b) for every earlier epoch", flags: []string{"-DRULE_ALL_EPOCHS", "-DMAXLOSS=2"}, fail: true},
		{name: "preheat stamps the run_id of a restarted Redis", flags: []string{"-DSTAMP_LATE", "-DMAXLOSS=2"}, fail: true},
		{name: "a rebuild goes on after its lock expired", flags: []string{"-DTWO_REBUILDERS", "-DNORETRY"}, fail: true},
		// Longer searches (seconds to minutes each).
		{name: "two losses", flags: []string{"-DMAXLOSS=2"}, deep: true},
		{name: "a rebuild dies after its transaction", flags: []string{"-DRCRASH=1"}, deep: true},
		{name: "a loss of the last writes", flags: []string{"-DPARTIAL"}, deep: true},
		{name: "limit 2", flags: []string{"-DLIMIT2"}, deep: true},
		{name: "token-fenced rebuild", flags: []string{"-DREBUILD_TOKEN"}, deep: true},
		{name: "two rebuilders fenced by a token", flags: []string{"-DTWO_REBUILDERS", "-DREBUILD_TOKEN", "-DNORETRY"}, deep: true},
	}
	deep := os.Getenv("SECKILL_MODEL_DEEP") != ""
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			if r.deep && !deep {
				t.Skip("set SECKILL_MODEL_DEEP=1 for this search")
			}
			t.Parallel()
			res := checkModel(t, spin, cc, model, r.flags, r.deep)
			switch {
			case !r.fail && res.errors > 0:
				t.Fatalf("spin %s: %d error(s) in the slot protocol:\n%s\n--- trail (spin -t) ---\n%s",
					flagText(r.flags), res.errors, res.summary, res.trail)
			case r.fail && res.errors == 0:
				t.Fatalf("spin %s found no violation; the model no longer catches this defect:\n%s",
					flagText(r.flags), res.summary)
			case r.fail:
				t.Logf("spin %s found the violation after %d states (as it must):\n%s",
					flagText(r.flags), res.states, trailSteps(res.trail))
			default:
				t.Logf("spin %s: no violation in %d states (%s)", flagText(r.flags), res.states, res.elapsed)
			}
		})
	}
}

// modelTools returns the paths of spin and a C compiler, or skips (fails in
// CI) when one is missing.
func modelTools(t *testing.T) (spin, cc string) {
	t.Helper()
	var missing []string
	spin, err := exec.LookPath("spin")
	if err != nil {
		missing = append(missing, "spin (apt-get install spin)")
	}
	for _, name := range []string{"gcc", "cc"} {
		if cc, err = exec.LookPath(name); err == nil {
			break
		}
	}
	if cc == "" {
		missing = append(missing, "a C compiler (gcc or cc)")
	}
	if len(missing) > 0 {
		msg := "the protocol model needs " + strings.Join(missing, " and ") + "; scripts/services.sh installs spin"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return spin, cc
}

type modelResult struct {
	errors  int
	states  int
	elapsed string
	summary string // pan's output
	trail   string // spin -t of the first error
}

// flagText names the model's variant for the log.
func flagText(flags []string) string {
	if len(flags) == 0 {
		return "(the design)"
	}
	return strings.Join(flags, " ")
}

// trailSteps cuts a replay after its steps and the violated assertion,
// before the dump of every variable.
func trailSteps(trail string) string {
	if i := strings.Index(trail, "spin: trail ends"); i >= 0 {
		if j := strings.IndexByte(trail[i:], '\n'); j >= 0 {
			return trail[:i+j]
		}
	}
	return trail
}

var (
	panErrors  = regexp.MustCompile(`errors: (\d+)`)
	panStates  = regexp.MustCompile(`(\d+) states, stored`)
	panElapsed = regexp.MustCompile(`elapsed time ([0-9.e+]+ seconds)`)
)

// checkModel generates the verifier for model with flags in a temporary
// directory, compiles it and runs an exhaustive search for assertion
// violations and invalid end states.
func checkModel(t *testing.T, spin, cc string, model []byte, flags []string, deep bool) modelResult {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "protocol.pml"), model, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	run(spin, append(append([]string{}, flags...), "-a", "protocol.pml")...)
	// The design's search needs under 1 GB; the deep ones up to 5 GB
	// (compressed).
	ccFlags := []string{"-O2", "-DSAFETY", "-DMEMLIM=2048"}
	if deep {
		ccFlags = []string{"-O2", "-DSAFETY", "-DCOLLAPSE", "-DMEMLIM=8192"}
	}
	run(cc, append(ccFlags, "-o", "pan", "pan.c")...)
	out := run("./pan", "-m100000")
	m := panErrors.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no error count in pan's output:\n%s", out)
	}
	res := modelResult{summary: out}
	res.errors, _ = strconv.Atoi(m[1])
	// pan stops at the first error; a search without one must have seen
	// every state.
	for _, bad := range []string{"max search depth too small", "reached -DMEMLIM bound", "Search not completed"} {
		if res.errors == 0 && strings.Contains(out, bad) {
			t.Fatalf("pan's search was not exhaustive (%s):\n%s", bad, out)
		}
	}
	if m := panStates.FindStringSubmatch(out); m != nil {
		res.states, _ = strconv.Atoi(m[1])
	}
	if m := panElapsed.FindStringSubmatch(out); m != nil {
		res.elapsed = m[1]
	}
	if res.errors > 0 {
		if _, err := os.Stat(filepath.Join(dir, "protocol.pml.trail")); err != nil {
			t.Fatalf("pan reported %d error(s) but wrote no trail:\n%s", res.errors, out)
		}
		// The replay prints the model's printf lines: one per step of the
		// protocol, then the violated assertion and the final values.
		res.trail = run(spin, append(append([]string{}, flags...), "-t", "protocol.pml")...)
	}
	return res
}
