package history

import "github.com/anishathalye/porcupine"

// CheckWide checks h as it was recorded, every operation with its whole
// interval and an unknown join's up to the end of the history: slow, but
// the plain form that Check's narrowing must agree with.
func CheckWide(h History) bool {
	acts := map[int64]*activityInfo{}
	for _, a := range h.Activities {
		acts[a.ID] = &activityInfo{Activity: a}
	}
	type key struct {
		act  int64
		user string
	}
	joins, idx := map[key]int{}, map[key]int{}
	end := int64(0)
	for _, j := range h.Joins {
		joins[key{j.Activity, j.User}]++
		end = max(end, j.Return)
	}
	for _, c := range h.Checks {
		end = max(end, c.Return)
	}
	var ops []porcupine.Operation
	for _, j := range h.Joins {
		act := acts[j.Activity]
		k := key{j.Activity, j.User}
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
		ret := j.Return
		if j.Outcome == JoinUnknown {
			ret = end + 1
		}
		ops = append(ops, porcupine.Operation{Input: in, Call: j.Call, Return: ret,
			Output: joinOutput{outcome: j.Outcome, token: j.Token}})
		if j.Outcome == JoinToken {
			ops = append(ops, porcupine.Operation{Input: issueInput{token: j.Token}, Call: j.Call, Return: j.Return})
		}
	}
	for _, c := range h.Checks {
		ret := c.Return
		if c.Outcome == CheckUnknown {
			ret = end + 1
		}
		ops = append(ops, porcupine.Operation{Input: checkInput{token: c.Token}, Call: c.Call, Return: ret, Output: c.Outcome})
	}
	return porcupine.CheckOperations(Model, ops)
}
