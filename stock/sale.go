package stock

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"seckill/activity"
)

var (
	//go:embed joins.lua
	joinsSource string
	//go:embed timeline.lua
	timelineSource string

	joinsScript    = script(joinsSource)
	timelineScript = script(timelineSource)
)

// saleKeys are the keys of an activity's counted joins: the turned-away
// counters with the busiest second, and the joins and winners of each
// second. They outlive a rebuild of the state and go with it at Drop.
// They live with the first shard of a sharded activity, whose meta hash
// joins.lua checks.
func (s *Store) saleKeys(ctx context.Context, id int64) (meta, sale, joins, winners string) {
	k := s.KeysOf(id)
	if l, err := s.layoutOf(ctx, id); err == nil {
		k = l.shards[0].k
	}
	return saleKeysOf(k)
}

// saleKeysOf returns the meta hash and the sale keys of a state's keys.
func saleKeysOf(k Keys) (meta, sale, joins, winners string) {
	tag := strings.TrimSuffix(k.Meta, "meta")
	return k.Meta, tag + "sale", tag + "joins", tag + "winners"
}

// flushBatch is the most activities' counts AddJoins sends in one round
// trip: the counts of activity.MaxTallied activities take four.
const flushBatch = 1024

// AddJoins adds one instance's counts of activities' joins (joins.lua),
// flushBatch activities a round trip, pipelined; counts for an activity
// without a state in Redis are dropped. It returns the counts Redis did
// not take (a batch that failed is returned whole: it may have been added
// or not, as after a timeout).
func (s *Store) AddJoins(ctx context.Context, cs []activity.JoinCounts) ([]activity.JoinCounts, error) {
	var failed []activity.JoinCounts
	var errs []error
	ids := make([]int64, len(cs))
	for i, c := range cs {
		ids[i] = c.ActivityID
	}
	layouts, err := s.routes(ctx, ids)
	if err != nil {
		return cs, err
	}
	for len(cs) > 0 {
		batch := cs[:min(len(cs), flushBatch)]
		cs = cs[len(batch):]
		f, err := s.addJoins(ctx, batch, layouts)
		failed = append(failed, f...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return failed, unavailable("joins", errors.Join(errs...))
	}
	return nil, nil
}

// addJoins runs joins.lua for each of cs in one pipeline; when Redis no
// longer knows the script (a restart), it loads it and runs those again in
// a second one.
func (s *Store) addJoins(ctx context.Context, cs []activity.JoinCounts, layouts map[int64]*layout) ([]activity.JoinCounts, error) {
	errs := s.pipeJoins(ctx, cs, layouts)
	var again []activity.JoinCounts
	var at []int
	for i, err := range errs {
		if redis.HasErrorPrefix(err, noScriptError) {
			again, at = append(again, cs[i]), append(at, i)
		}
	}
	if len(again) > 0 {
		if err := joinsScript.Load(ctx, s.rdb).Err(); err != nil {
			for _, i := range at {
				errs[i] = err
			}
		} else {
			for j, err := range s.pipeJoins(ctx, again, layouts) {
				errs[at[j]] = err
			}
		}
	}
	var failed []activity.JoinCounts
	var first error
	for i, err := range errs {
		if err != nil {
			failed = append(failed, cs[i])
			if first == nil {
				first = err
			}
		}
	}
	if first != nil {
		return failed, fmt.Errorf("%d of %d activities: %w", len(failed), len(cs), first)
	}
	return nil, nil
}

// pipeJoins runs joins.lua by its SHA for each of cs in one pipeline, and
// returns the error of each.
func (s *Store) pipeJoins(ctx context.Context, cs []activity.JoinCounts, layouts map[int64]*layout) []error {
	cmds := make([]*redis.Cmd, len(cs))
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range cs {
			keys, args := s.joinsCall(layouts[c.ActivityID], c)
			cmds[i] = joinsScript.EvalSha(ctx, p, keys, args...)
		}
		return nil
	})
	errs := make([]error, len(cs))
	for i, cmd := range cmds {
		errs[i] = cmd.Err()
	}
	return errs
}

// joinsCall returns the keys and arguments of joins.lua for c.
func (s *Store) joinsCall(l *layout, c activity.JoinCounts) ([]string, []any) {
	meta, sale, joins, winners := saleKeysOf(l.shards[0].k)
	args := make([]any, 0, 3+3*len(c.Seconds))
	args = append(args, c.TurnedAway.SoldOut, c.TurnedAway.LimitReached, c.TurnedAway.Busy)
	for _, sec := range c.Seconds {
		args = append(args, sec.At, sec.Joins, sec.Winners)
	}
	return []string{meta, sale, joins, winners}, args
}

// Turnout returns the joins of an activity turned away and its busiest
// second, added up over every instance; false when Redis holds no state for
// the activity.
func (s *Store) Turnout(ctx context.Context, id int64) (activity.Turnout, bool, error) {
	meta, sale, _, _ := s.saleKeys(ctx, id)
	pipe := s.rdb.Pipeline()
	exists := pipe.Exists(ctx, meta)
	vals := pipe.HMGet(ctx, sale, "soldOut", "limitReached", "busy", "peak", "peakAt")
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return activity.Turnout{}, false, unavailable("turnout", err)
	}
	if exists.Val() == 0 {
		return activity.Turnout{}, false, nil
	}
	n := make([]int64, 5)
	for i, v := range vals.Val() {
		if str, ok := v.(string); ok {
			n[i], _ = strconv.ParseInt(str, 10, 64)
		}
	}
	t := activity.Turnout{TurnedAway: activity.TurnedAway{SoldOut: n[0], LimitReached: n[1], Busy: n[2]}, PeakJoins: n[3]}
	if n[3] > 0 {
		t.PeakAt = time.Unix(n[4], 0).UTC()
	}
	return t, true, nil
}

// Timeline returns the seconds from from to to (Unix times, both in, at
// most activity.MaxTimeline of them) in which joins of an activity were
// answered, oldest first (timeline.lua).
func (s *Store) Timeline(ctx context.Context, id, from, to int64) ([]activity.SecondCount, error) {
	if to-from >= activity.MaxTimeline {
		from = to - activity.MaxTimeline + 1
	}
	_, _, joins, winners := s.saleKeys(ctx, id)
	res, err := timelineScript.Run(ctx, s.rdb, []string{joins, winners}, from, to).Int64Slice()
	if err != nil {
		return nil, unavailable("timeline", err)
	}
	if len(res)%3 != 0 {
		return nil, unavailable("timeline", fmt.Errorf("unexpected answer %v", res))
	}
	out := make([]activity.SecondCount, 0, len(res)/3)
	for i := 0; i < len(res); i += 3 {
		out = append(out, activity.SecondCount{At: res[i], Joins: res[i+1], Winners: res[i+2]})
	}
	return out, nil
}

// dropSaleAt deletes the counted joins kept under the tag of k.
func (s *Store) dropSaleAt(ctx context.Context, k Keys) error {
	_, sale, joins, winners := saleKeysOf(k)
	if err := s.rdb.Del(ctx, sale, joins, winners).Err(); err != nil {
		return unavailable("drop", err)
	}
	return nil
}
