package main

import (
	"errors"
	"flag"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"seckill/internal/history"
)

// histories holds, by base URL, the recorder of each server whose joins
// and token checks a test records: joinHTTP and checkTokenHTTP write to it.
var histories sync.Map

// historyCheckTimeout bounds a check; a storm's history takes well under a
// second (the test logs how long).
const historyCheckTimeout = 30 * time.Second

// recording is the history of one activity's sale, with the token probe
// that runs alongside.
type recording struct {
	rec       *history.Recorder
	stopProbe func()
}

// recordHistory records every join and token check made on the server at
// base from now until the test ends, and checks a sample of the tokens
// answered (and some forged ones) while it runs. The activity must be open
// with nothing taken yet.
func recordHistory(t *testing.T, base string, id int64, stock, perUser int) *recording {
	t.Helper()
	r := &recording{rec: history.NewRecorder()}
	r.rec.Activity(id, stock, perUser)
	histories.Store(base, r.rec)
	r.stopProbe = probeTokens(base, r.rec)
	t.Cleanup(func() {
		r.stopProbe()
		histories.Delete(base)
	})
	return r
}

// check stops the probe and checks the history against the service's
// promises (internal/history); a history that breaks them fails the test
// with the path of its visualization.
func (r *recording) check(t *testing.T) {
	t.Helper()
	r.stopProbe()
	res, err := history.Check(r.rec.History(), historyCheckTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("history: %v", res)
	switch res.Outcome {
	case porcupine.Ok:
	case porcupine.Illegal:
		t.Errorf("the joins and token checks break the service's promises in %s; the history: %s",
			strings.Join(res.Illegal, ", "), visualizeHistory(t, res))
	default:
		t.Errorf("the history check did not end within %v", historyCheckTimeout)
	}
}

// visualizeHistory writes the illegal part of a history as porcupine's HTML
// view and returns its path: in the test's artifact directory with
// -artifacts, else in a directory of its own that outlives the test.
func visualizeHistory(t *testing.T, res history.Result) string {
	t.Helper()
	var dir string
	if f := flag.Lookup("test.artifacts"); f != nil && f.Value.String() == "true" {
		dir = t.ArtifactDir()
	} else {
		d, err := os.MkdirTemp("", "seckill-history-")
		if err != nil {
			return "not written: " + err.Error()
		}
		dir = d
	}
	path := filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+".html")
	if err := res.Visualize(path); err != nil {
		return "not written: " + err.Error()
	}
	return path
}

// recordJoin records a join about to be sent to base, when a test records
// its history; call the function it returns with the answer.
func recordJoin(base string, id int64, user string) func(status int, code, token string, err error) {
	v, ok := histories.Load(base)
	if !ok {
		return func(int, string, string, error) {}
	}
	done := v.(*history.Recorder).Join(id, user)
	return func(status int, code, token string, err error) {
		outcome := history.JoinOutcomeOf(status, code)
		if errors.Is(err, syscall.ECONNREFUSED) {
			outcome = history.JoinRefused // the request was never sent
		}
		done(status, outcome, token)
	}
}

// checkTokenHTTP asks base about a token and returns the status of the
// answer, recorded when a test records base's history.
func checkTokenHTTP(base, token string) (int, error) {
	done := func(history.CheckOutcome) {}
	if v, ok := histories.Load(base); ok {
		done = v.(*history.Recorder).CheckToken(token)
	}
	resp, err := joinClient.Get(base + "/api/v1/tokens/" + token)
	if err != nil {
		done(history.CheckUnknown)
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	done(history.CheckOutcomeOf(resp.StatusCode))
	return resp.StatusCode, nil
}

// probeTokens checks a token answered so far every 50 ms, one in ten of
// them forged (a character changed), until the function it returns is
// called.
func probeTokens(base string, rec *history.Recorder) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(1, 1))
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			token, ok := rec.SampleToken(rng)
			if !ok {
				continue
			}
			if n%10 == 0 {
				token = forge(token)
			}
			_, _ = checkTokenHTTP(base, token)
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		<-done
	}
}

// forge changes one character in the middle of a token: the same length
// and alphabet, a different MAC.
func forge(token string) string {
	b := []byte(token)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}
