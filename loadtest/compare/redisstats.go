package main

import (
	"context"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisSnap is what Redis counted so far, server-wide.
type redisSnap struct {
	// reads is INFO stats total_reads_processed: one per request (or
	// pipeline) a client sent, that is one per round trip.
	reads int64
	// calls is INFO commandstats calls by command. A Lua script counts once
	// as EVALSHA and once more for every redis.call it makes.
	calls map[string]int64
	// cpu is INFO cpu used_cpu_user + used_cpu_sys, in seconds; -1 when
	// missing.
	cpu float64
}

func snapRedis(ctx context.Context, rdb *redis.Client) (redisSnap, error) {
	info, err := rdb.Info(ctx, "stats", "commandstats", "cpu").Result()
	if err != nil {
		return redisSnap{}, err
	}
	s := redisSnap{calls: map[string]int64{}, cpu: -1}
	var cpuFields int
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "total_reads_processed:"):
			s.reads, _ = strconv.ParseInt(strings.TrimPrefix(line, "total_reads_processed:"), 10, 64)
		case strings.HasPrefix(line, "used_cpu_user:") || strings.HasPrefix(line, "used_cpu_sys:"):
			_, v, _ := strings.Cut(line, ":")
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				s.cpu += f
				cpuFields++
			}
		case strings.HasPrefix(line, "cmdstat_"):
			name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":")
			if !ok {
				continue
			}
			for _, f := range strings.Split(rest, ",") {
				if v, ok := strings.CutPrefix(f, "calls="); ok {
					s.calls[name], _ = strconv.ParseInt(v, 10, 64)
				}
			}
		}
	}
	if cpuFields == 2 {
		s.cpu++ // the -1 of "missing"
	} else {
		s.cpu = -1
	}
	return s, nil
}

// redisDelta is what happened between two snapshots.
type redisDelta struct {
	RoundTrips int64 `json:"roundTrips"`
	// BackgroundPerSec is the round trips per second measured in the pause
	// before the run: other clients of the server (and an idle server of
	// the harness).
	BackgroundPerSec float64 `json:"backgroundPerSec"`
	// BackgroundScriptsPerSec is the script calls per second in that pause.
	BackgroundScriptsPerSec float64 `json:"backgroundScriptsPerSec"`
	// ScriptCalls are the EVAL/EVALSHA/FCALL calls: one request each.
	ScriptCalls int64 `json:"scriptCalls"`
	// Commands and ByCommand are INFO commandstats calls, which count a
	// script once and every redis.call it makes once more.
	Commands  int64            `json:"commands"`
	ByCommand map[string]int64 `json:"byCommand"`
}

var scriptCommands = map[string]bool{
	"eval": true, "evalsha": true, "eval_ro": true, "evalsha_ro": true, "fcall": true, "fcall_ro": true,
}

func (after redisSnap) since(before redisSnap) redisDelta {
	d := redisDelta{RoundTrips: after.reads - before.reads, ByCommand: map[string]int64{}}
	for name, n := range after.calls {
		if dn := n - before.calls[name]; dn > 0 {
			d.ByCommand[name] = dn
			d.Commands += dn
			if scriptCommands[name] {
				d.ScriptCalls += dn
			}
		}
	}
	// The INFO of the first snapshot is counted in the second; it is the
	// harness's, not the design's.
	if d.ByCommand["info"] > 0 {
		d.ByCommand["info"]--
		if d.ByCommand["info"] == 0 {
			delete(d.ByCommand, "info")
		}
		d.Commands--
		d.RoundTrips--
	}
	return d
}

// net returns the round trips of a run of sec seconds less the background.
func (d redisDelta) net(sec float64) float64 {
	return max(0, float64(d.RoundTrips)-d.BackgroundPerSec*sec)
}

// requests estimates what clients asked of Redis in a run of sec seconds,
// less the background:
// every command or script call sent counts once, pipelined or not. Network
// round trips count it when nothing is pipelined; script calls count it when
// scripts are pipelined (and nothing but scripts is sent); the larger of the
// two is the estimate. Commands that scripts call are not requests.
func (d redisDelta) requests(sec float64) float64 {
	return max(d.net(sec), float64(d.ScriptCalls)-d.BackgroundScriptsPerSec*sec, 0)
}
