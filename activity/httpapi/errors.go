package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"seckill/activity"
)

// Errors of the HTTP layer itself.
var (
	errUnauthorized = errors.New("httpapi: unauthorized")
	errTooLarge     = errors.New("httpapi: request body too large")
	errNoRoute      = errors.New("httpapi: no such endpoint")
	errNoMethod     = errors.New("httpapi: method not allowed")
	errRateLimited  = errors.New("httpapi: rate limited")
	errShed         = errors.New("httpapi: too many joins in flight")
)

// answer is how the API answers an error: its status, stable code and
// message, and the outcome label seckill_joins_total counts a join answered
// so under ("error" for the answers a join is not given).
type answer struct {
	err     error
	status  int
	code    string
	message string
	outcome string
}

// errorTable maps errors to their answers: the one place where domain errors
// become HTTP. The first match wins; an error matching none is internal.
var errorTable = []answer{
	{activity.ErrInvalid, http.StatusBadRequest, "invalid_request", "invalid request", "invalid"},
	{errUnauthorized, http.StatusUnauthorized, "unauthorized", "a valid admin bearer token is required", "error"},
	{errUserToken, http.StatusUnauthorized, "unauthorized", "a valid user token is required: Authorization: Bearer <JWT>", "unauthorized"},
	{errUserHeader, http.StatusUnauthorized, "unauthorized", "the user header the gateway sets is missing, given twice or not a valid userId", "unauthorized"},
	{activity.ErrForbidden, http.StatusForbidden, "forbidden", "your role may not do this", "error"},
	{errNoStaff, http.StatusNotFound, "not_found", "this server keeps no staff accounts", "error"},
	{activity.ErrNotFound, http.StatusNotFound, "not_found", "no such activity or token", "not_found"},
	{errNoRoute, http.StatusNotFound, "not_found", "no such endpoint", "error"},
	{errNoMethod, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this endpoint", "error"},
	{activity.ErrSoldOut, http.StatusConflict, "sold_out", "no slot left", "sold_out"},
	{activity.ErrLimitReached, http.StatusConflict, "limit_reached", "the user already holds the most tokens allowed for this activity", "limit_reached"},
	{activity.ErrNotOpen, http.StatusConflict, "not_open", "the activity is not open for joining now", "not_open"},
	{activity.ErrInvalidState, http.StatusConflict, "invalid_state", "not allowed in the activity's current state", "error"},
	{activity.ErrAlreadyRedeemed, http.StatusConflict, "already_redeemed", "the token was redeemed before", "error"},
	{activity.ErrExists, http.StatusConflict, "already_exists", "the name is taken", "error"},
	{activity.ErrStockConflict, http.StatusConflict, "stock_conflict", "the stock cannot go below the slots already claimed (issued and in flight)", "error"},
	{errTooLarge, http.StatusRequestEntityTooLarge, "too_large", "request body too large", "too_large"},
	{errSignInLimited, http.StatusTooManyRequests, "rate_limited", "too many failed sign-ins from this address; wait a minute", "error"},
	{errRateLimited, http.StatusTooManyRequests, "rate_limited", "too many requests; slow down", "rate_limited"},
	{activity.ErrSlotsInFlight, http.StatusServiceUnavailable, "slots_in_flight", "every slot is taken, but some only by joins still in flight that may give theirs back; nothing was taken; retry after Retry-After seconds", "slots_in_flight"},
	{errShed, http.StatusServiceUnavailable, "unavailable", "the service is busy with other joins; nothing was taken; retry after Retry-After seconds", "shed"},
	{activity.ErrUnavailable, http.StatusServiceUnavailable, "unavailable", "a dependency is unavailable; nothing was taken; safe to retry", "unavailable"},
}

// internalError is the answer to an error of no row of the table.
var internalError = answer{status: http.StatusInternalServerError, code: "internal", message: "internal error", outcome: "error"}

// answerTo returns the answer to err.
func answerTo(err error) *answer {
	for i := range errorTable {
		if errors.Is(err, errorTable[i].err) {
			return &errorTable[i]
		}
	}
	return &internalError
}

// retryAfter is the Retry-After header of every 503 answer, in seconds: a
// join in flight settles within the produce timeout, and a lost state is
// rebuilt within a few job cycles.
const retryAfter = "1"

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Tokens lists, with limit_reached, the tokens the user already holds.
	Tokens []tokenResponse `json:"tokens,omitempty"`
	// RedeemedAt is, with already_redeemed, when the token was redeemed.
	RedeemedAt *time.Time `json:"redeemedAt,omitempty"`
	// Claimed is, with stock_conflict, how many slots were claimed;
	// Lowest the lowest the stock may go to now.
	Claimed *int64 `json:"claimed,omitempty"`
	Lowest  *int64 `json:"lowest,omitempty"`
	// Dependency names, with unavailable, the dependency that failed:
	// redis, mysql or kafka.
	Dependency string `json:"dependency,omitempty"`
}

// fail answers err with its status and the error JSON of the API.
func (s *Server) fail(c *gin.Context, err error) {
	ans := answerTo(err)
	status, code, msg := ans.status, ans.code, ans.message
	var ve *activity.ValidationError
	if errors.As(err, &ve) {
		msg = ve.Error()
	}
	var fe *activity.ForbiddenError
	if errors.As(err, &fe) {
		msg = fe.Reason
	}
	var tokens []tokenResponse
	var le *activity.LimitError
	if errors.As(err, &le) {
		tokens = make([]tokenResponse, len(le.Held))
		for i := range le.Held {
			tokens[i] = newTokenResponse(&le.Held[i])
		}
	}
	detail := errorDetail{Code: code, Message: msg, Tokens: tokens}
	var re *activity.RedeemedError
	if errors.As(err, &re) {
		detail.RedeemedAt = &re.RedeemedAt
	}
	var se *activity.StockConflictError
	if errors.As(err, &se) {
		detail.Claimed, detail.Lowest = &se.Claimed, &se.Lowest
		if se.Reason != "" {
			msg = se.Reason
		}
		detail.Message = fmt.Sprintf("%s: %d are claimed", msg, se.Claimed)
	}
	var de *activity.DependencyError
	if errors.As(err, &de) {
		s.metrics.dependencyErrors.WithLabelValues(de.Dependency).Inc()
		if ans.err == activity.ErrUnavailable {
			if body, ok := renderedDependencies[de.Dependency]; ok {
				// Each dependency's answer is rendered once, like the
				// table's: a storm of joins while Kafka is down costs no
				// marshalling.
				c.Header("Retry-After", retryAfter)
				s.logFailure(c, status, err)
				c.Abort()
				c.Data(status, "application/json; charset=utf-8", body)
				return
			}
			detail.Dependency = de.Dependency
		}
	}
	if status == http.StatusServiceUnavailable {
		c.Header("Retry-After", retryAfter)
	}
	if ans.err != activity.ErrSlotsInFlight && ans.err != errShed {
		s.logFailure(c, status, err)
	}
	if ve == nil && tokens == nil && re == nil && se == nil {
		if body, ok := renderedErrors[msg]; ok && body.code == code {
			// The common answers (sold_out above all, in a storm, and shed
			// joins in an overload) are written from bytes rendered once.
			c.Abort()
			c.Data(status, "application/json; charset=utf-8", body.json)
			return
		}
	}
	c.AbortWithStatusJSON(status, errorBody{detail})
}

// logFailure logs a 5xx answer, at most once a second: an outage must not
// flood the log.
func (s *Server) logFailure(c *gin.Context, status int, err error) {
	if status >= 500 && s.logGate.Open() {
		s.log.Error("request failed", "method", c.Request.Method, "path", c.FullPath(), "status", status,
			"requestId", requestIDOf(c), "err", err)
	}
}

// dependencyNames are the dependencies a 503 may name, as its message
// spells them.
var dependencyNames = map[string]string{"redis": "Redis", "mysql": "MySQL", "kafka": "Kafka"}

// renderedDependencies holds the body of a 503 caused by each dependency,
// rendered once.
var renderedDependencies = func() map[string][]byte {
	m := map[string][]byte{}
	for dep, name := range dependencyNames {
		b, _ := json.Marshal(errorBody{errorDetail{Code: "unavailable", Dependency: dep,
			Message: name + " is unavailable; nothing was taken; safe to retry"}})
		m[dep] = b
	}
	return m
}()

type renderedError struct {
	code string
	json []byte
}

// renderedErrors holds the error bodies of the table by message, rendered
// once.
var renderedErrors = func() map[string]renderedError {
	m := map[string]renderedError{}
	for _, e := range errorTable {
		b, _ := json.Marshal(errorBody{errorDetail{Code: e.code, Message: e.message}})
		m[e.message] = renderedError{code: e.code, json: b}
	}
	return m
}()

func invalid(field, msg string) error {
	return &activity.ValidationError{Field: field, Message: msg}
}

// MaxBodyBytes is the largest request body accepted.
const MaxBodyBytes = 8 << 10

// decode reads one JSON object from the body into dst: unknown fields (also
// known ones spelled in another case, which encoding/json would accept), a
// field given twice, wrong types, trailing data and bodies over MaxBodyBytes
// are errors naming the field where there is one.
func decode(c *gin.Context, dst any) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	return decodeBody(body, dst)
}

// readBody reads the request's body, at most MaxBodyBytes of it.
func readBody(c *gin.Context) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errTooLarge
		}
		return nil, invalid("body", "could not be read")
	}
	return body, nil
}

// decodeBody is decode of a body already read.
func decodeBody(body []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid("body", "must hold one JSON object and nothing after it")
	}
	return checkKeys(body, fieldNames(dst))
}

// checkKeys makes sure every key of the (valid) JSON object in body is one
// of names, spelled exactly so, and appears once.
func checkKeys(body []byte, names map[string]bool) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // {
		return invalid("body", "is not valid JSON")
	}
	seen := make(map[string]bool, len(names))
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return invalid("body", "is not valid JSON")
		}
		key, _ := t.(string)
		if !names[key] {
			return invalid(key, "is not a known field")
		}
		if seen[key] {
			return invalid(key, "appears more than once")
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return invalid("body", "is not valid JSON")
		}
	}
	return nil
}

var fieldNameCache sync.Map // reflect.Type -> map[string]bool

// fieldNames returns the JSON names of the fields of the struct dst points to.
func fieldNames(dst any) map[string]bool {
	t := reflect.TypeOf(dst).Elem()
	if v, ok := fieldNameCache.Load(t); ok {
		return v.(map[string]bool)
	}
	names := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names[name] = true
		}
	}
	fieldNameCache.Store(t, names)
	return names
}

func decodeError(err error) error {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		te  *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		return errTooLarge
	case errors.Is(err, io.EOF):
		return invalid("body", "is required: a JSON object")
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("body", "is not valid JSON")
	case errors.As(err, &te):
		if te.Field == "" {
			return invalid("body", "must be a JSON object")
		}
		return invalid(te.Field, "must be "+jsonKind(te.Type.Kind().String()))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return invalid(name, "is not a known field")
	default:
		return invalid("body", "is not valid JSON")
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int64", "int", "int32":
		return "a whole number in range"
	case "string":
		return "a string"
	default:
		return "of the right type"
	}
}
