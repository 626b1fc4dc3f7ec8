package mysql

import (
	"testing"

	"seckill/activity"
)

// TestStateAction: each move of state is audited under the admin action
// that makes it, and an open moved back after its preheat failed as
// open_undone.
func TestStateAction(t *testing.T) {
	for _, c := range []struct {
		from, to activity.State
		want     string
	}{
		{activity.StateDraft, activity.StateApproved, "approve"},
		{activity.StateDraft, activity.StateRefused, "refuse"},
		{activity.StateApproved, activity.StateOpen, "open"},
		{activity.StateOpen, activity.StateClosed, "close"},
		{activity.StateOpen, activity.StateApproved, "open_undone"},
		{activity.StateApproved, activity.StateDraft, "draft"},
	} {
		if got := stateAction(c.from, c.to); got != c.want {
			t.Errorf("%s → %s audited as %s, want %s", c.from, c.to, got, c.want)
		}
	}
}
