package history

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/anishathalye/porcupine"
)

// How a history becomes porcupine operations, cheap to check.
//
// Partitions: one per activity, with its joins, and one per token, with
// the join that was answered it (an "issue" with the join's times) and its
// checks. The split is exact as long as a token is checked only after its
// join was answered, as a client that learnt it from the answer does.
//
// Porcupine searches the orders of the operations that overlap in time,
// and a storm has hundreds in flight: a history that breaks the model
// would take it longer than a test has. Most operations, though, have one
// best place in the interval in which they were in flight, and are given
// to porcupine at that place, as [t, t]. Each narrowing below keeps the
// verdict: a linearization of the history with the operation anywhere in
// its interval stays one with the operation moved to the place named.
//
//   - An unknown join, at its call: its take stays pending from there.
//   - slots_in_flight: only the last sent is checked, at its call. The
//     count only grows, so if it was below the stock then, it was at the
//     calls of the others.
//   - sold_out: only the first to return is checked, at its return. Once
//     it holds, the count stays at the stock, so every later sold_out
//     holds; and the count only grows.
//   - limit_reached: only the user's first to return, at its return (a
//     user's holdings only grow).
//   - A token, at its call when the slots_in_flight is not in its
//     interval: the count matters only to slots_in_flight, to sold_out and
//     limit_reached (which want it high) and to other tokens, which passed
//     later with a higher count. Else, unless the user's limit_reached is
//     in its interval, at its return when the sold_out is not in it, or
//     right after the slots_in_flight when it is (all such tokens one
//     nanosecond apart, in any order: tokens commute). Else it keeps it.
//   - Refused joins constrain nothing and are left out.
//
// What is left wide is a token of a user told limit_reached while it was
// in flight; the search stays about linear.

// Result is the verdict on a history.
type Result struct {
	// Outcome is porcupine.Ok, porcupine.Illegal (the history breaks the
	// model) or porcupine.Unknown (the check ran out of time).
	Outcome porcupine.CheckResult
	// What was checked: joins (of which unknown, and of which left out as
	// implied by another answer or refused), token checks, partitions, and
	// the operations of the largest partition.
	Joins, UnknownJoins, LeftOut, Checks, Partitions, Largest int
	Took                                                      time.Duration
	// Illegal names the partitions that broke the model.
	Illegal []string

	bad []porcupine.Operation // the operations of the illegal partitions
}

// OK reports whether the history was found linearizable.
func (r Result) OK() bool { return r.Outcome == porcupine.Ok }

func (r Result) String() string {
	return fmt.Sprintf("%s: %d joins (%d unknown, %d left out), %d token checks, %d partitions (largest %d operations), checked in %v",
		r.Outcome, r.Joins, r.UnknownJoins, r.LeftOut, r.Checks, r.Partitions, r.Largest, r.Took.Round(time.Millisecond))
}

// Visualize writes porcupine's HTML view of the partitions that broke the
// model to path. It returns an error when there are none or on failure to
// write.
func (r Result) Visualize(path string) error {
	if len(r.bad) == 0 {
		return fmt.Errorf("history: no illegal partition to show")
	}
	_, info := porcupine.CheckOperationsVerbose(Model, r.bad, time.Minute)
	return porcupine.VisualizePath(Model, info, path)
}

// Check checks h against the model, giving up after timeout (0: none). It
// returns an error for a join on an activity h does not describe.
func Check(h History, timeout time.Duration) (Result, error) {
	began := time.Now()
	ops, leftOut, err := operations(h)
	if err != nil {
		return Result{}, err
	}
	res := Result{Joins: len(h.Joins), LeftOut: leftOut, Checks: len(h.Checks)}
	for _, j := range h.Joins {
		if j.Outcome == JoinUnknown {
			res.UnknownJoins++
		}
	}
	parts := partition(ops)
	res.Partitions = len(parts)
	for _, p := range parts {
		res.Largest = max(res.Largest, len(p))
	}
	res.Outcome = porcupine.CheckOperationsTimeout(Model, ops, timeout)
	if res.Outcome == porcupine.Illegal {
		for _, p := range parts {
			if !porcupine.CheckOperations(Model, p) {
				res.Illegal = append(res.Illegal, partitionName(p))
				res.bad = append(res.bad, p...)
			}
		}
	}
	res.Took = time.Since(began)
	return res, nil
}

func partitionName(p []porcupine.Operation) string {
	switch in := p[0].Input.(type) {
	case joinInput:
		return fmt.Sprintf("activity %d", in.act.ID)
	case issueInput:
		return "token " + in.token
	case checkInput:
		return "token " + in.token
	}
	return "?"
}

// span is when a call was sent and answered, for the visualization.
type span struct{ call, ret int64 }

func (s span) String() string {
	return fmt.Sprintf("sent at %v, answered %v later", time.Duration(s.call).Round(time.Microsecond),
		time.Duration(s.ret-s.call).Round(time.Microsecond))
}

// operations turns h into porcupine operations, as the comment above says,
// and returns how many joins it left out.
func operations(h History) (ops []porcupine.Operation, leftOut int, err error) {
	acts := map[int64]*activityInfo{}
	for _, a := range h.Activities {
		acts[a.ID] = &activityInfo{Activity: a}
	}
	type key struct {
		act  int64
		user string
	}
	const soldOut = "\x00sold out" // no userId has a NUL
	joins := map[key]int{}
	// first: the first sold_out of an activity, and limit_reached of a
	// user, to return; last: the last slots_in_flight of an activity to be
	// sent.
	first, last := map[key]int{}, map[int64]int{}
	for i, j := range h.Joins {
		if acts[j.Activity] == nil {
			return nil, 0, fmt.Errorf("history: join of %s on activity %d, which the history does not describe", j.User, j.Activity)
		}
		k := key{j.Activity, j.User}
		joins[k]++
		switch j.Outcome {
		case JoinSoldOut:
			k.user = soldOut
		case JoinLimitReached:
		case JoinInFlight:
			if l, ok := last[j.Activity]; !ok || j.Call > h.Joins[l].Call {
				last[j.Activity] = i
			}
			continue
		default:
			continue
		}
		if f, ok := first[k]; !ok || j.Return < h.Joins[f].Return {
			first[k] = i
		}
	}
	idx := map[key]int{}
	afterInFlight := map[int64][]int{} // tokens to place right after the slots_in_flight, by index in ops
	for i, j := range h.Joins {
		act := acts[j.Activity]
		k := key{j.Activity, j.User}
		call, ret := j.Call, j.Return
		switch j.Outcome {
		case JoinUnknown:
			ret = call
		case JoinInFlight:
			if last[j.Activity] != i {
				leftOut++
				continue
			}
			ret = call
		case JoinSoldOut:
			if first[key{j.Activity, soldOut}] != i {
				leftOut++
				continue
			}
			call = ret
		case JoinLimitReached:
			if first[k] != i {
				leftOut++
				continue
			}
			call = ret
		case JoinRefused:
			leftOut++
			continue
		case JoinToken:
			// within: whether the first or last join f, if ok, is in the
			// token's interval, at the point at gives it.
			within := func(f int, ok bool, at func(Join) int64) bool {
				return ok && j.Call <= at(h.Joins[f]) && at(h.Joins[f]) <= j.Return
			}
			sent := func(j Join) int64 { return j.Call }
			answered := func(j Join) int64 { return j.Return }
			if l, ok := last[j.Activity]; !within(l, ok, sent) {
				ret = call
				break
			}
			if f, ok := first[k]; within(f, ok, answered) {
				break // limit_reached while in flight: it keeps its interval
			}
			if f, ok := first[key{j.Activity, soldOut}]; !within(f, ok, answered) {
				call = ret
			} else {
				afterInFlight[j.Activity] = append(afterInFlight[j.Activity], len(ops))
			}
		}
		in := joinInput{act: act, user: j.User, idx: -1}
		if joins[k] > 1 {
			n, ok := idx[k]
			if !ok {
				n = act.tracked
				idx[k] = n
				act.tracked++
			}
			in.idx = n
		}
		ops = append(ops, porcupine.Operation{Input: in, Call: call, Return: ret,
			Output: joinOutput{outcome: j.Outcome, token: j.Token, status: j.Status}, Metadata: span{j.Call, j.Return}})
		if j.Outcome == JoinToken {
			ops = append(ops, porcupine.Operation{Input: issueInput{token: j.Token, user: j.User},
				Call: j.Call, Return: j.Return, Metadata: span{j.Call, j.Return}})
		}
	}
	// One after the other, a nanosecond apart: tokens commute, and at one
	// instant porcupine would try them in every order. When the gap to the
	// sold_out is too narrow for that, they keep their intervals.
	for act, list := range afterInFlight {
		in := h.Joins[last[act]].Call
		out := h.Joins[first[key{act, soldOut}]].Return
		fits := in+int64(len(list)) < out
		for n, o := range list {
			fits = fits && in+int64(n+1) <= ops[o].Return
		}
		for n, o := range list {
			if fits {
				ops[o].Call, ops[o].Return = in+int64(n+1), in+int64(n+1)
			}
		}
	}
	end := int64(0)
	for _, op := range ops {
		end = max(end, op.Return)
	}
	for _, c := range h.Checks {
		end = max(end, c.Call, c.Return)
	}
	for _, c := range h.Checks {
		ret := c.Return
		if c.Outcome == CheckUnknown {
			ret = end + 1 // it says nothing, whenever it happened
		}
		ops = append(ops, porcupine.Operation{Input: checkInput{token: c.Token}, Call: c.Call, Return: ret,
			Output: c.Outcome, Metadata: span{c.Call, c.Return}})
	}
	assignClients(ops)
	return ops, leftOut, nil
}

// assignClients gives each operation a client (a row of the
// visualization): the first whose last operation returned before it was
// called.
func assignClients(ops []porcupine.Operation) {
	order := make([]int, len(ops))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(ops[a].Call, ops[b].Call) })
	var free []int64 // per client, when its last operation returned
	for _, i := range order {
		c := slices.IndexFunc(free, func(r int64) bool { return r < ops[i].Call })
		if c < 0 {
			c = len(free)
			free = append(free, 0)
		}
		free[c] = ops[i].Return
		ops[i].ClientId = c
	}
}
