// Package mq carries participation events through Kafka with sarama: an
// idempotent producer that the join path waits on, and a consumer group that
// writes the events into MySQL in batches.
package mq

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"seckill/activity"
)

// eventVersion is the version of the event encoding.
const eventVersion = 1

// Event is a participation event as it travels on the topic, JSON-encoded
// and keyed by activity ID.
type Event struct {
	Version    int    `json:"v"`
	Token      string `json:"token"`
	ActivityID int64  `json:"activityId"`
	Slot       int64  `json:"slot"`
	UserID     string `json:"userId"`
	ClaimID    string `json:"claimId"`
	Epoch      int64  `json:"epoch"`
	// Seq, Held and IdempotencyKey came after version 1 was first written;
	// events without them decode with zero values.
	Seq            int64     `json:"seq,omitempty"`
	Held           []int64   `json:"held,omitempty"`
	IdempotencyKey string    `json:"idempotencyKey,omitempty"`
	IssuedAt       time.Time `json:"issuedAt"`
}

// EncodeEvent returns the wire form of a participation.
func EncodeEvent(p activity.Participation) ([]byte, error) {
	return json.Marshal(Event{Version: eventVersion, Token: p.Token, ActivityID: p.ActivityID, Slot: p.Slot,
		UserID: p.UserID, ClaimID: p.ClaimID, Epoch: p.Epoch, Seq: p.Seq, Held: p.Held,
		IdempotencyKey: p.IdempotencyKey, IssuedAt: p.IssuedAt})
}

// DecodeEvent parses an event; it returns an error for anything that is not
// a well-formed participation event of a known version.
func DecodeEvent(b []byte) (activity.Participation, error) {
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return activity.Participation{}, fmt.Errorf("mq: bad event: %w", err)
	}
	if e.Version != eventVersion {
		return activity.Participation{}, fmt.Errorf("mq: unknown event version %d", e.Version)
	}
	if !e.wellFormed() {
		return activity.Participation{}, errors.New("mq: event lacks a field or has one out of range")
	}
	return activity.Participation{Token: e.Token, ActivityID: e.ActivityID, Slot: e.Slot, UserID: e.UserID,
		ClaimID: e.ClaimID, Epoch: max(e.Epoch, 1), Seq: e.Seq, Held: e.Held, IdempotencyKey: e.IdempotencyKey,
		IssuedAt: e.IssuedAt.UTC()}, nil
}

// wellFormed reports whether every field of e is there and in range.
func (e *Event) wellFormed() bool {
	return len(e.Token) == activity.TokenLen && e.ActivityID >= 1 && e.Slot >= 1 && e.Slot <= activity.MaxStock &&
		activity.ValidUserID(e.UserID) && len(e.ClaimID) == activity.ClaimIDLen && e.Epoch >= 0 && !e.IssuedAt.IsZero() &&
		e.Seq >= 0 && len(e.Held) <= activity.MaxPerUserLimit &&
		(e.IdempotencyKey == "" || activity.ValidIdempotencyKey(e.IdempotencyKey))
}
