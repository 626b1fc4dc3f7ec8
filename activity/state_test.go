package activity_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"seckill/activity"
)

func TestStateNext(t *testing.T) {
	allowed := map[activity.State]map[activity.Action]activity.State{
		activity.StateDraft:    {activity.ActionApprove: activity.StateApproved, activity.ActionRefuse: activity.StateRefused},
		activity.StateApproved: {activity.ActionOpen: activity.StateOpen},
		activity.StateOpen:     {activity.ActionClose: activity.StateClosed},
	}
	actions := []activity.Action{activity.ActionApprove, activity.ActionRefuse, activity.ActionOpen, activity.ActionClose, "delete", ""}
	states := append(append([]activity.State(nil), activity.States...), "archived", "")

	for _, from := range states {
		for _, act := range actions {
			want, ok := allowed[from][act]
			name := fmt.Sprintf("%sFrom%s", title(string(act)), title(string(from)))
			if ok {
				t.Run(name+"Gives"+title(string(want)), func(t *testing.T) {
					got, err := from.Next(act)
					if err != nil {
						t.Fatalf("%q.Next(%q): %v, want %q", from, act, err, want)
					}
					if got != want {
						t.Fatalf("%q.Next(%q) = %q, want %q", from, act, got, want)
					}
				})
				continue
			}
			t.Run(name+"IsInvalidState", func(t *testing.T) {
				got, err := from.Next(act)
				if !errors.Is(err, activity.ErrInvalidState) {
					t.Fatalf("%q.Next(%q) error = %v, want ErrInvalidState", from, act, err)
				}
				if got != from {
					t.Fatalf("%q.Next(%q) = %q on error, want the state unchanged", from, act, got)
				}
			})
		}
	}
}

// title returns s with its first letter in upper case, "Empty" for "".
func title(s string) string {
	if s == "" {
		return "Empty"
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func TestStatePredicates(t *testing.T) {
	tests := []struct {
		state                   activity.State
		valid, editable, public bool
	}{
		{activity.StateDraft, true, true, false},
		{activity.StateApproved, true, false, true},
		{activity.StateRefused, true, false, false},
		{activity.StateOpen, true, false, true},
		{activity.StateClosed, true, false, true},
		{"archived", false, false, false},
		{"", false, false, false},
		{"DRAFT", false, false, false},
	}
	if len(activity.States) != 5 {
		t.Fatalf("States has %d entries, want the 5 of the contract", len(activity.States))
	}
	for _, tt := range tests {
		t.Run(title(string(tt.state)), func(t *testing.T) {
			if got := tt.state.Valid(); got != tt.valid {
				t.Errorf("Valid() = %v, want %v", got, tt.valid)
			}
			if got := tt.state.Editable(); got != tt.editable {
				t.Errorf("Editable() = %v, want %v", got, tt.editable)
			}
			if got := tt.state.Public(); got != tt.public {
				t.Errorf("Public() = %v, want %v", got, tt.public)
			}
		})
	}
}
