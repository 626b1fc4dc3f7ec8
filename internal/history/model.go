package history

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/anishathalye/porcupine"
)

// The sequential model, one activity at a time. Its state is the number of
// tokens taken and what each user holds. A join
//
//   - answered a token takes one: the count is below the stock and the
//     user's below the limit; a token is handed out once in the whole
//     history;
//   - answered sold_out finds the count at the stock (issued tokens are
//     never given back, so sold_out is final);
//   - answered limit_reached finds the user at the limit;
//   - answered slots_in_flight takes nothing and finds the count below the
//     stock (slots only held are not counted: they may come back);
//   - refused (429, not_open, a connection refused) takes nothing;
//   - with no answer, a timeout or a 5xx, may take a token or not, at any
//     moment after it was sent, its answer included: a token confirmed by a
//     process that died before answering, a slot a rebuild kept in doubt.
//
// A token check answers 200 when the token was taken by a join before it
// and 404 when it never was; a token once taken stays valid, so a 404
// after a 200 join or a 200 check is a violation, and so is a 200 for a
// token no join was answered. A check with no answer, or a 503, says
// nothing.
//
// An unknown join is the operation with no end: in porcupine's terms its
// return is at infinity, and any moment after its call is its
// linearization point. The model takes the infinity upon itself: an
// unknown join leaves a take pending, which may happen before any later
// step, or never. The state is one value: taken, the tokens taken for
// certain, and maybe, those plus the pending takes; the count is anywhere
// in taken..min(stock, maybe), and sold_out makes it the stock.
//
// Users who join more than once are tracked, each with the range of tokens
// they may hold (a user's only join is always under the limit). The range
// is kept apart from the count: exact when the user's answers are all
// known; when one is unknown it forgets which holdings go with which
// count, which can only accept more. The storms make such users only
// with retries told slots_in_flight, whose outcome is known.

type activityInfo struct {
	Activity
	tracked int // users with a slot in held
}

type joinInput struct {
	act  *activityInfo
	user string
	idx  int // the user's slot in held, or -1 when untracked
}

type joinOutput struct {
	outcome JoinOutcome
	token   string
	status  int
}

type issueInput struct{ token, user string }

type checkInput struct{ token string }

// activityState is the state of an activity's partition; held has 8 bytes
// a tracked user: the least and most tokens the user may hold, little
// endian, capped at the limit.
type activityState struct {
	taken, maybe int
	held         string
}

type tokenState bool // issued

func heldOf(held string, i int) (a, b int) {
	return int(binary.LittleEndian.Uint32([]byte(held[8*i:]))), int(binary.LittleEndian.Uint32([]byte(held[8*i+4:])))
}

func withHeld(held string, i, a, b int) string {
	buf := []byte(held)
	binary.LittleEndian.PutUint32(buf[8*i:], uint32(a))
	binary.LittleEndian.PutUint32(buf[8*i+4:], uint32(b))
	return string(buf)
}

func stepJoin(s activityState, in joinInput, out joinOutput) (bool, interface{}) {
	stock, limit := in.act.Stock, in.act.PerUserLimit
	var a, b int
	if in.idx >= 0 {
		a, b = heldOf(s.held, in.idx)
	}
	switch out.outcome {
	case JoinToken:
		if s.taken >= stock || a >= limit {
			return false, s
		}
		s.taken++
		s.maybe++
		if in.idx >= 0 {
			s.held = withHeld(s.held, in.idx, a+1, min(b, limit-1)+1)
		}
	case JoinSoldOut:
		if s.maybe < stock {
			return false, s
		}
		s.taken = stock // the pending takes it needs happened
	case JoinLimitReached:
		if in.idx < 0 || b < limit {
			return false, s
		}
		s.held = withHeld(s.held, in.idx, limit, limit)
	case JoinInFlight:
		if s.taken >= stock {
			return false, s
		}
	case JoinRefused:
	case JoinUnknown:
		s.maybe++
		if in.idx >= 0 {
			s.held = withHeld(s.held, in.idx, a, min(b+1, limit))
		}
	}
	return true, s
}

func step(state, input, output interface{}) (bool, interface{}) {
	switch in := input.(type) {
	case joinInput:
		s, ok := state.(activityState)
		if !ok {
			s.held = strings.Repeat("\x00", 8*in.act.tracked)
		}
		return stepJoin(s, in, output.(joinOutput))
	case issueInput:
		// A token is handed out once.
		issued, _ := state.(tokenState)
		return !bool(issued), tokenState(true)
	case checkInput:
		issued, _ := state.(tokenState)
		switch output.(CheckOutcome) {
		case CheckValid:
			return bool(issued), state
		case CheckNotFound:
			return !bool(issued), state
		}
		return true, state
	}
	panic(fmt.Sprintf("history: unknown input %T", input))
}

func partition(ops []porcupine.Operation) [][]porcupine.Operation {
	var order []string
	parts := map[string][]porcupine.Operation{}
	for _, op := range ops {
		var key string
		switch in := op.Input.(type) {
		case joinInput:
			key = fmt.Sprintf("activity %d", in.act.ID)
		case issueInput:
			key = "token " + in.token
		case checkInput:
			key = "token " + in.token
		}
		if _, ok := parts[key]; !ok {
			order = append(order, key)
		}
		parts[key] = append(parts[key], op)
	}
	out := make([][]porcupine.Operation, len(order))
	for i, k := range order {
		out[i] = parts[k]
	}
	return out
}

func short(token string) string {
	if len(token) > 10 {
		return token[:10] + "…"
	}
	return token
}

func describeOperation(input, output interface{}) string {
	switch in := input.(type) {
	case joinInput:
		out := output.(joinOutput)
		switch out.outcome {
		case JoinToken:
			return fmt.Sprintf("join(%s) → token %s", in.user, short(out.token))
		case JoinUnknown:
			return fmt.Sprintf("join(%s) → %d: unknown, may take a token from now on", in.user, out.status)
		}
		return fmt.Sprintf("join(%s) → %s", in.user, out.outcome)
	case issueInput:
		return fmt.Sprintf("token %s answered to join(%s)", short(in.token), in.user)
	case checkInput:
		return fmt.Sprintf("check(%s) → %s", short(in.token), output.(CheckOutcome))
	}
	return fmt.Sprint(input, output)
}

func describeState(state interface{}) string {
	switch st := state.(type) {
	case nil:
		return "nothing yet"
	case tokenState:
		if st {
			return "issued"
		}
		return "not issued"
	case activityState:
		d := fmt.Sprintf("%d taken", st.taken)
		if st.maybe > st.taken {
			d += fmt.Sprintf(", %d more may be", st.maybe-st.taken)
		}
		var held []string
		for i := range len(st.held) / 8 {
			if a, b := heldOf(st.held, i); a == b && a > 0 {
				held = append(held, fmt.Sprintf("#%d holds %d", i, a))
			} else if a != b {
				held = append(held, fmt.Sprintf("#%d holds %d..%d", i, a, b))
			}
		}
		if len(held) > 0 {
			d += " (" + strings.Join(held, ", ") + ")"
		}
		return d
	}
	return fmt.Sprint(state)
}

// Model is the porcupine model of the service. Its operations are built by
// Check from a History; it is exported for porcupine.Visualize.
var Model = porcupine.Model{
	Partition:         partition,
	Init:              func() interface{} { return nil },
	Step:              step,
	DescribeOperation: describeOperation,
	DescribeState:     describeState,
	DescribeOperationMetadata: func(m interface{}) string {
		if m == nil {
			return ""
		}
		return fmt.Sprint(m)
	},
}
