package httpapi

import (
	"time"

	"seckill/activity"
)

// activityRequest is the body of create and patch: every field optional.
type activityRequest struct {
	Name         *string `json:"name"`
	Description  *string `json:"description"`
	Stock        *int64  `json:"stock"`
	PerUserLimit *int64  `json:"perUserLimit"`
	BeginAt      *string `json:"beginAt"`
	EndAt        *string `json:"endAt"`
	AutoOpen     *bool   `json:"autoOpen"`
	Shards       *int    `json:"shards"`
}

func (r activityRequest) fields() (activity.Fields, error) {
	f := activity.Fields{Name: r.Name, Description: r.Description, Stock: r.Stock, PerUserLimit: r.PerUserLimit,
		AutoOpen: r.AutoOpen, Shards: r.Shards}
	var err error
	if f.BeginAt, err = parseTime("beginAt", r.BeginAt); err != nil {
		return f, err
	}
	if f.EndAt, err = parseTime("endAt", r.EndAt); err != nil {
		return f, err
	}
	return f, nil
}

func parseTime(field string, s *string) (*time.Time, error) {
	if s == nil {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		return nil, invalid(field, "must be an RFC 3339 time such as 2026-11-11T00:00:00Z")
	}
	return &t, nil
}

type activityResponse struct {
	ID           int64          `json:"id"`
	Name         string         `json:"name"`
	Description  string         `json:"description"`
	Stock        int64          `json:"stock"`
	PerUserLimit int64          `json:"perUserLimit"`
	BeginAt      time.Time      `json:"beginAt"`
	EndAt        time.Time      `json:"endAt"`
	AutoOpen     bool           `json:"autoOpen"`
	Shards       int            `json:"shards"`
	State        activity.State `json:"state"`
	CreatedBy    string         `json:"createdBy"`
	UpdatedBy    string         `json:"updatedBy"`
	CreatedAt    time.Time      `json:"createdAt"`
	UpdatedAt    time.Time      `json:"updatedAt"`
	Stats        *statsResponse `json:"stats,omitempty"`
	// Summary is what the sale came to, once closed.
	Summary *summaryResponse `json:"summary,omitempty"`
	// Unavailable names the dependencies that did not answer a read of
	// one activity, and ReadAt, with mysql, when it was last read from
	// MySQL.
	Unavailable []string   `json:"unavailable,omitempty"`
	ReadAt      *time.Time `json:"readAt,omitempty"`
}

type statsResponse struct {
	// The numbers of Redis, absent while it is down; those of MySQL,
	// absent while it is.
	Claimed    *int64              `json:"claimed,omitempty"`
	InFlight   *int64              `json:"inFlight,omitempty"`
	Issued     *int64              `json:"issued,omitempty"`
	TurnedAway *turnedAwayResponse `json:"turnedAway,omitempty"`
	Recorded   *int64              `json:"recorded,omitempty"`
	Surplus    *int64              `json:"surplus,omitempty"`
	// ReconciledAt is a *time.Time, null before the first snapshot; nil
	// (absent) while MySQL is down.
	ReconciledAt any `json:"reconciledAt,omitempty"`
}

type turnedAwayResponse struct {
	SoldOut      int64 `json:"soldOut"`
	LimitReached int64 `json:"limitReached"`
	Busy         int64 `json:"busy"`
}

type summaryResponse struct {
	Winners            int64              `json:"winners"`
	TurnedAway         turnedAwayResponse `json:"turnedAway"`
	PeakJoinsPerSecond int64              `json:"peakJoinsPerSecond"`
	PeakAt             *time.Time         `json:"peakAt"`
	StartedAt          time.Time          `json:"startedAt"`
	EndedAt            time.Time          `json:"endedAt"`
	DurationSeconds    int64              `json:"durationSeconds"`
}

func newTurnedAway(t activity.TurnedAway) turnedAwayResponse {
	return turnedAwayResponse{SoldOut: t.SoldOut, LimitReached: t.LimitReached, Busy: t.Busy}
}

func newActivityResponse(a *activity.Activity, st *activity.Stats) activityResponse {
	r := activityResponse{
		ID: a.ID, Name: a.Name, Description: a.Description, Stock: a.Stock, PerUserLimit: a.PerUserLimit,
		BeginAt: a.BeginAt, EndAt: a.EndAt, AutoOpen: a.AutoOpen, Shards: a.Shards, State: a.State, CreatedBy: a.CreatedBy, UpdatedBy: a.UpdatedBy, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
	}
	if m := a.Summary; m != nil {
		r.Summary = &summaryResponse{Winners: m.Winners, TurnedAway: newTurnedAway(m.TurnedAway), PeakJoinsPerSecond: m.PeakJoins,
			PeakAt: m.PeakAt, StartedAt: m.StartedAt, EndedAt: m.EndedAt, DurationSeconds: m.DurationSeconds()}
	}
	if st == nil {
		return r
	}
	r.Stats = &statsResponse{}
	if !st.Lacks("redis") {
		r.Stats.Claimed, r.Stats.InFlight, r.Stats.Issued = &st.Claimed, &st.InFlight, &st.Issued
		if st.TurnedAway != nil {
			t := newTurnedAway(*st.TurnedAway)
			r.Stats.TurnedAway = &t
		}
	}
	if !st.Lacks("mysql") {
		r.Stats.Recorded, r.Stats.Surplus, r.Stats.ReconciledAt = &st.Recorded, &st.Surplus, st.ReconciledAt
	}
	r.Unavailable, r.ReadAt = st.Unavailable, st.ReadAt
	return r
}

type publicActivityResponse struct {
	ID          int64          `json:"id"`
	Name        string         `json:"name"`
	Description string         `json:"description"`
	BeginAt     time.Time      `json:"beginAt"`
	EndAt       time.Time      `json:"endAt"`
	State       activity.State `json:"state"`
	Remaining   int64          `json:"remaining"`
}

type joinRequest struct {
	UserID *string `json:"userId"`
}

type tokenResponse struct {
	Token      string     `json:"token"`
	ActivityID int64      `json:"activityId"`
	Slot       int64      `json:"slot"`
	UserID     string     `json:"userId"`
	IssuedAt   time.Time  `json:"issuedAt"`
	RedeemedAt *time.Time `json:"redeemedAt,omitempty"`
}

func newTokenResponse(p *activity.Participation) tokenResponse {
	return tokenResponse{Token: p.Token, ActivityID: p.ActivityID, Slot: p.Slot, UserID: p.UserID, IssuedAt: p.IssuedAt,
		RedeemedAt: p.RedeemedAt}
}

// stockRequest is the body of a stock change.
type stockRequest struct {
	Stock *int64 `json:"stock"`
}
