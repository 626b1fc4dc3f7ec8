package activity

// State is where an activity is in its life cycle.
type State string

// The states of an activity.
const (
	StateDraft    State = "draft"
	StateApproved State = "approved"
	StateRefused  State = "refused"
	StateOpen     State = "open"
	StateClosed   State = "closed"
)

// States lists every state, in life-cycle order.
var States = []State{StateDraft, StateApproved, StateRefused, StateOpen, StateClosed}

// Valid reports whether s is a known state.
func (s State) Valid() bool {
	for _, v := range States {
		if s == v {
			return true
		}
	}
	return false
}

// Action is an admin transition of an activity.
type Action string

// The admin transitions.
const (
	ActionApprove Action = "approve"
	ActionRefuse  Action = "refuse"
	ActionOpen    Action = "open"
	ActionClose   Action = "close"
	// ActionDraft returns an approved activity to draft, before it opens,
	// for a correction.
	ActionDraft Action = "draft"
)

// transitions is the state machine, in one place: action -> from -> to.
var transitions = map[Action]struct{ from, to State }{
	ActionApprove: {StateDraft, StateApproved},
	ActionRefuse:  {StateDraft, StateRefused},
	ActionOpen:    {StateApproved, StateOpen},
	ActionClose:   {StateOpen, StateClosed},
	ActionDraft:   {StateApproved, StateDraft},
}

// Next returns the state that action a leads to from s.
// It returns ErrInvalidState when the state machine does not allow it.
func (s State) Next(a Action) (State, error) {
	t, ok := transitions[a]
	if !ok || t.from != s {
		return s, ErrInvalidState
	}
	return t.to, nil
}

// Editable reports whether an activity in state s may be edited.
func (s State) Editable() bool { return s == StateDraft }

// StockChangeable reports whether the stock of an activity in state s may
// be changed: until it closes, unless it was refused.
func (s State) StockChangeable() bool {
	return s == StateDraft || s == StateApproved || s == StateOpen
}

// Public reports whether users may see an activity in state s.
func (s State) Public() bool {
	return s == StateApproved || s == StateOpen || s == StateClosed
}
