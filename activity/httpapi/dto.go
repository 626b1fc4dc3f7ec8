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
}

func (r activityRequest) fields() (activity.Fields, error) {
	f := activity.Fields{Name: r.Name, Description: r.Description, Stock: r.Stock, PerUserLimit: r.PerUserLimit,
		AutoOpen: r.AutoOpen}
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
	State        activity.State `json:"state"`
	CreatedBy    string         `json:"createdBy"`
	UpdatedBy    string         `json:"updatedBy"`
	CreatedAt    time.Time      `json:"createdAt"`
	UpdatedAt    time.Time      `json:"updatedAt"`
	Stats        *statsResponse `json:"stats,omitempty"`
}

type statsResponse struct {
	Claimed      int64      `json:"claimed"`
	InFlight     int64      `json:"inFlight"`
	Issued       int64      `json:"issued"`
	Recorded     int64      `json:"recorded"`
	Surplus      int64      `json:"surplus"`
	ReconciledAt *time.Time `json:"reconciledAt"`
}

func newActivityResponse(a *activity.Activity, st *activity.Stats) activityResponse {
	r := activityResponse{
		ID: a.ID, Name: a.Name, Description: a.Description, Stock: a.Stock, PerUserLimit: a.PerUserLimit,
		BeginAt: a.BeginAt, EndAt: a.EndAt, AutoOpen: a.AutoOpen, State: a.State, CreatedBy: a.CreatedBy, UpdatedBy: a.UpdatedBy, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
	}
	if st != nil {
		r.Stats = &statsResponse{Claimed: st.Claimed, InFlight: st.InFlight, Issued: st.Issued,
			Recorded: st.Recorded, Surplus: st.Surplus, ReconciledAt: st.ReconciledAt}
	}
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
