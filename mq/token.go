package mq

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"seckill/activity"
)

// TokenSchema names the encoding of the tokens topic's messages; every
// message carries it in its "schema" header. A change that a consumer of
// version 1 would misread gets a new name; fields may be added to version 1.
const TokenSchema = "seckill.token.v1"

// tokenVersion is TokenSchema's version, also in each message's "v" field.
const tokenVersion = 1

// TokenMessage is a token settled valid as it travels on the tokens topic,
// JSON-encoded and keyed by its activity ID in decimal. It is the contract
// with the services downstream (the draw): fields are added, never renamed
// or removed, within TokenSchema.
type TokenMessage struct {
	Version int `json:"v"`
	// Token is the slot token, as GET /api/v1/tokens/{token} takes it: the
	// idempotency key of the message, which may arrive more than once.
	Token      string `json:"token"`
	ActivityID int64  `json:"activityId"`
	Slot       int64  `json:"slot"`
	UserID     string `json:"userId"`
	// IssuedAt is when the join was answered with the token, in UTC.
	IssuedAt time.Time `json:"issuedAt"`
	// Epoch is the activity's Redis epoch the token was issued in (it
	// grows each time the activity's state was rebuilt); informative.
	Epoch int64 `json:"epoch"`
}

// EncodeToken returns the tokens topic's message of a valid participation.
func EncodeToken(p activity.Participation) ([]byte, error) {
	return json.Marshal(TokenMessage{Version: tokenVersion, Token: p.Token, ActivityID: p.ActivityID, Slot: p.Slot,
		UserID: p.UserID, IssuedAt: p.IssuedAt.UTC(), Epoch: max(p.Epoch, 1)})
}

// DecodeToken parses a message of the tokens topic; it returns an error for
// anything that is not a well-formed token message of a known version.
func DecodeToken(b []byte) (TokenMessage, error) {
	var m TokenMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("mq: bad token message: %w", err)
	}
	if m.Version != tokenVersion {
		return m, fmt.Errorf("mq: unknown token message version %d", m.Version)
	}
	if len(m.Token) != activity.TokenLen || m.ActivityID < 1 || m.Slot < 1 || m.Slot > activity.MaxStock ||
		!activity.ValidUserID(m.UserID) || m.IssuedAt.IsZero() || m.Epoch < 1 {
		return m, errors.New("mq: token message lacks a field or has one out of range")
	}
	return m, nil
}
