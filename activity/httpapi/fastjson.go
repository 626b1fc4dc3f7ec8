package httpapi

import (
	"encoding/json"
	"strconv"
	"time"

	"seckill/activity"
)

// The join is the one request a flash sale sends by the ten thousand, and
// nearly all of them look alike: {"userId":"u-10293"}. fastJoinBody reads
// that shape and nothing else, and appendToken writes the answer, each
// without reflection; any other body goes through decode, any other answer
// through encoding/json, with the same result (FuzzFastJoinBody,
// TestAppendToken).

// fastJoinBody returns the userId of a body that is exactly one JSON object
// with the one field "userId", a string of the characters a userId may
// hold (activity.ValidUserID's, any length), and JSON whitespace around
// the tokens; ok is false for anything else, which decode then reads and
// judges.
func fastJoinBody(b []byte) (userID string, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return "", false
	}
	i = skipSpace(b, i+1)
	const key = `"userId"`
	if len(b)-i < len(key) || string(b[i:i+len(key)]) != key {
		return "", false
	}
	i = skipSpace(b, i+len(key))
	if i >= len(b) || b[i] != ':' {
		return "", false
	}
	i = skipSpace(b, i+1)
	if i >= len(b) || b[i] != '"' {
		return "", false
	}
	start := i + 1
	for i = start; i < len(b) && userIDChar(b[i]); i++ {
	}
	if i >= len(b) || b[i] != '"' {
		return "", false
	}
	userID = string(b[start:i])
	i = skipSpace(b, i+1)
	if i >= len(b) || b[i] != '}' {
		return "", false
	}
	if skipSpace(b, i+1) != len(b) {
		return "", false
	}
	return userID, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// userIDChar reports whether c may appear in a userId (activity.ValidUserID):
// none of them needs escaping in JSON.
func userIDChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
}

// appendToken appends the JSON of a participation's token answer, the same
// bytes encoding/json makes of its tokenResponse (for an issuedAt in the
// years 0 to 9999, which encoding/json alone accepts, and every token is).
func appendToken(b []byte, p *activity.Participation) []byte {
	b = append(b, `{"token":`...)
	b = appendString(b, p.Token)
	b = append(b, `,"activityId":`...)
	b = strconv.AppendInt(b, p.ActivityID, 10)
	b = append(b, `,"slot":`...)
	b = strconv.AppendInt(b, p.Slot, 10)
	b = append(b, `,"userId":`...)
	b = appendString(b, p.UserID)
	b = append(b, `,"issuedAt":"`...)
	b = p.IssuedAt.AppendFormat(b, time.RFC3339Nano)
	if p.RedeemedAt != nil {
		b = append(b, `","redeemedAt":"`...)
		b = p.RedeemedAt.AppendFormat(b, time.RFC3339Nano)
	}
	return append(b, `"}`...)
}

// appendString appends s as a JSON string: as it is between quotes when no
// byte of it needs escaping (encoding/json escapes <, > and & too), else as
// encoding/json writes it.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
