package httpapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"seckill/activity"
	"seckill/activity/httpapi"
)

// The reference model the fuzz targets hold the Server to: a reading of the
// contract, the OpenAPI document openapi.yaml (served at GET /openapi.yaml),
// written apart from the Server's own code. It is deliberately strict where
// the contract is: a body is one JSON object whose member names are the
// documented ones, spelled exactly and each at most once.

// codesOf are the stable codes each status may carry.
var codesOf = map[int][]string{
	http.StatusBadRequest:            {"invalid_request"},
	http.StatusUnauthorized:          {"unauthorized"},
	http.StatusNotFound:              {"not_found"},
	http.StatusMethodNotAllowed:      {"method_not_allowed"},
	http.StatusConflict:              {"sold_out", "limit_reached", "not_open", "invalid_state"},
	http.StatusRequestEntityTooLarge: {"too_large"},
	http.StatusTooManyRequests:       {"rate_limited"},
	http.StatusServiceUnavailable:    {"unavailable"},
}

// apiError is the error JSON of an answer.
type apiError struct {
	Code    string      `json:"code"`
	Message string      `json:"message"`
	Tokens  []tokenJSON `json:"tokens"`
}

// errorOf checks that r is exactly the error JSON of the contract with a
// code its status may carry, and returns it.
func errorOf(r fuzzReply) (apiError, error) {
	var e apiError
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return e, fmt.Errorf("Content-Type %q, want application/json", ct)
	}
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &outer); err != nil {
		return e, fmt.Errorf("not a JSON object: %v", err)
	}
	var detail map[string]json.RawMessage
	if len(outer) != 1 || outer["error"] == nil || json.Unmarshal(outer["error"], &detail) != nil {
		return e, errors.New(`want exactly {"error": {...}}`)
	}
	if err := json.Unmarshal(outer["error"], &e); err != nil {
		return e, fmt.Errorf("error object: %v", err)
	}
	want := 2
	if _, ok := detail["tokens"]; ok && e.Code == "limit_reached" {
		want = 3 // limit_reached lists the tokens the user holds
	}
	if len(detail) != want || detail["code"] == nil || detail["message"] == nil {
		return e, errors.New(`want exactly {"code": string, "message": string}`)
	}
	if !slices.Contains(codesOf[r.status], e.Code) {
		return e, fmt.Errorf("code %q with status %d, want one of %q", e.Code, r.status, codesOf[r.status])
	}
	if strings.TrimSpace(e.Message) == "" {
		return e, errors.New("empty message")
	}
	return e, nil
}

// members reads body as the contract wants a request body: at most
// MaxBodyBytes, one JSON object and nothing after it but white space, member
// names unique. It returns the members by name. A body of null is read as
// {}, as encoding/json and so the server do.
func members(body []byte) (map[string]json.RawMessage, error) {
	if len(body) > httpapi.MaxBodyBytes {
		return nil, errors.New("too large")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	out := map[string]json.RawMessage{}
	switch tok, err := dec.Token(); {
	case err != nil:
		return nil, err
	case tok == nil:
		if _, err := dec.Token(); err != io.EOF {
			return nil, errors.New("data after null")
		}
		return out, nil
	case tok != json.Delim('{'):
		return nil, errors.New("not an object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name := tok.(string) // an object's keys are strings, or Token fails
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("duplicate member %q", name)
		}
		out[name] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the object")
	}
	return out, nil
}

var userIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// joinUser returns the userId of a valid join body.
func joinUser(body []byte) (string, bool) {
	m, err := members(body)
	if err != nil || len(m) != 1 || m["userId"] == nil {
		return "", false
	}
	var user string
	if !isString(m["userId"]) || json.Unmarshal(m["userId"], &user) != nil || !userIDPattern.MatchString(user) {
		return "", false
	}
	return user, true
}

func isString(raw json.RawMessage) bool { return len(raw) > 0 && raw[0] == '"' }
func isNull(raw json.RawMessage) bool   { return string(raw) == "null" }

// wantedActivity is an activity as the reference computes it.
type wantedActivity struct {
	name, description   string
	stock, perUserLimit int64
	beginAt, endAt      time.Time
	hasBegin, hasEnd    bool
}

var integerLiteral = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// applyActivity applies an admin body to base the way the contract says:
// every member optional, null the same as absent. It reports whether the
// body is well formed and the result a valid activity.
func applyActivity(base wantedActivity, body []byte) (wantedActivity, bool) {
	m, err := members(body)
	if err != nil {
		return base, false
	}
	a := base
	for name, raw := range m {
		if isNull(raw) {
			if !slices.Contains([]string{"name", "description", "stock", "perUserLimit", "beginAt", "endAt"}, name) {
				return base, false
			}
			continue
		}
		switch name {
		case "name", "description", "beginAt", "endAt":
			var s string
			if !isString(raw) || json.Unmarshal(raw, &s) != nil {
				return base, false
			}
			switch name {
			case "name":
				a.name = s
			case "description":
				a.description = s
			default:
				t, err := time.Parse(time.RFC3339Nano, s)
				if err != nil {
					return base, false
				}
				// Stored in DATETIME(3): milliseconds.
				t = t.UTC().Truncate(time.Millisecond)
				if name == "beginAt" {
					a.beginAt, a.hasBegin = t, true
				} else {
					a.endAt, a.hasEnd = t, true
				}
			}
		case "stock", "perUserLimit":
			if !integerLiteral.Match(raw) {
				return base, false
			}
			n, err := strconv.ParseInt(string(raw), 10, 64)
			if err != nil {
				return base, false
			}
			if name == "stock" {
				a.stock = n
			} else {
				a.perUserLimit = n
			}
		default:
			return base, false
		}
	}
	n := utf8.RuneCountInString(a.name)
	ok := n >= 1 && n <= activity.MaxNameLen &&
		utf8.RuneCountInString(a.description) <= activity.MaxDescriptionLen &&
		a.stock >= 1 && a.stock <= activity.MaxStock &&
		a.perUserLimit >= 1 && a.perUserLimit <= activity.MaxPerUserLimit &&
		a.hasBegin && a.hasEnd &&
		// The server's own extension of the contract: dates MySQL holds.
		a.beginAt.Year() >= 2000 && a.endAt.Year() <= 9999 &&
		a.endAt.After(a.beginAt)
	return a, ok
}

// diff says how got differs from w, or returns "".
func (w wantedActivity) diff(got activityJSON) string {
	var d []string
	if got.Name != w.name {
		d = append(d, fmt.Sprintf("name %q, want %q", got.Name, w.name))
	}
	if got.Description != w.description {
		d = append(d, fmt.Sprintf("description %q, want %q", got.Description, w.description))
	}
	if got.Stock != w.stock || got.PerUserLimit != w.perUserLimit {
		d = append(d, fmt.Sprintf("stock %d perUserLimit %d, want %d %d", got.Stock, got.PerUserLimit, w.stock, w.perUserLimit))
	}
	if !got.BeginAt.Equal(w.beginAt) || !got.EndAt.Equal(w.endAt) {
		d = append(d, fmt.Sprintf("window [%v, %v), want [%v, %v)", got.BeginAt, got.EndAt, w.beginAt, w.endAt))
	}
	if got.State != "draft" {
		d = append(d, fmt.Sprintf("state %q, want draft", got.State))
	}
	return strings.Join(d, "; ")
}
