package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"seckill/activity"
)

// Sign-in and roles on the admin API: who asks (the bootstrap admin token,
// or a staff member's credential looked up in MySQL on every request, so a
// removed one is refused at once on every instance), and whether the role
// may.

// errSignInLimited answers every admin request of a client address that
// failed to sign in too often lately.
var errSignInLimited = errors.New("httpapi: too many failed sign-ins")

const actorKey = "seckill.actor"

// authenticate finds the actor of the request's bearer token, puts it in
// the request's context for the domain (roles, four eyes, the audit log),
// or answers 401; a client address past its failed sign-ins is answered
// 429 whatever its token, so that a guess is never told right.
func (s *Server) authenticate(c *gin.Context) {
	// A try is paid for before its token is checked, and paid back when it
	// signs in: guesses sent all at once are held to the limit too.
	ip := clientIP(c.Request)
	if !s.authFails.allow(ip) {
		s.fail(c, errSignInLimited)
		return
	}
	actor, err := s.actorOf(c)
	if err != nil {
		if errors.Is(err, errUnauthorized) {
			s.metrics.signInFailures.Inc()
		} else {
			s.authFails.refund(ip) // MySQL failed: no guess was judged
		}
		s.fail(c, err)
		return
	}
	s.authFails.refund(ip)
	actor.RequestID = requestIDOf(c)
	c.Set(actorKey, actor)
	c.Request = c.Request.WithContext(activity.WithActor(c.Request.Context(), actor))
	c.Next()
}

func (s *Server) actorOf(c *gin.Context) (activity.Actor, error) {
	scheme, tok, _ := strings.Cut(c.GetHeader("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return activity.Actor{}, errUnauthorized
	}
	sum := sha256.Sum256([]byte(tok))
	// Hashes of equal length make the comparison constant-time whatever the
	// token's length; an empty admin token never matches.
	if s.adminHash != emptyHash && subtle.ConstantTimeCompare(sum[:], s.adminHash[:]) == 1 {
		return activity.Actor{Name: activity.BootstrapActor, Role: activity.RoleAdmin}, nil
	}
	if s.staff == nil {
		return activity.Actor{}, errUnauthorized
	}
	actor, err := s.staff.Actor(c.Request.Context(), tok)
	if errors.Is(err, activity.ErrNotFound) {
		return activity.Actor{}, errUnauthorized
	}
	return actor, err
}

func actorOfContext(c *gin.Context) activity.Actor {
	a, _ := c.Get(actorKey)
	actor, _ := a.(activity.Actor)
	return actor
}

// allow lets the request through when the actor's role is admin or one of
// roles, and answers 403 forbidden otherwise.
func (s *Server) allow(what string, roles ...activity.Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		actor := actorOfContext(c)
		if actor.Role != activity.RoleAdmin && !slices.Contains(roles, actor.Role) {
			s.fail(c, activity.Forbidden("the role %s may not %s", actor.Role, what))
			return
		}
		c.Next()
	}
}

type meResponse struct {
	Name string        `json:"name"`
	Role activity.Role `json:"role"`
}

func (s *Server) me(c *gin.Context) {
	a := actorOfContext(c)
	c.JSON(http.StatusOK, meResponse{Name: a.Name, Role: a.Role})
}

type staffRequest struct {
	Name *string `json:"name"`
	Role *string `json:"role"`
}

type staffResponse struct {
	Name      string        `json:"name"`
	Role      activity.Role `json:"role"`
	CreatedAt time.Time     `json:"createdAt"`
	CreatedBy string        `json:"createdBy"`
	// Token is the credential, in the answer of its creation only.
	Token string `json:"token,omitempty"`
}

func newStaffResponse(st *activity.Staff) staffResponse {
	return staffResponse{Name: st.Name, Role: st.Role, CreatedAt: st.CreatedAt, CreatedBy: st.CreatedBy}
}

// errNoStaff answers the staff endpoints of a server without staff
// accounts.
var errNoStaff = errors.New("httpapi: no staff accounts on this server")

func (s *Server) addStaff(c *gin.Context) {
	if s.staff == nil {
		s.fail(c, errNoStaff)
		return
	}
	var req staffRequest
	if err := decode(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	switch {
	case req.Name == nil:
		s.fail(c, invalid("name", "is required"))
		return
	case req.Role == nil:
		s.fail(c, invalid("role", "is required"))
		return
	}
	st, token, err := s.staff.Add(c.Request.Context(), *req.Name, activity.Role(*req.Role))
	if err != nil {
		s.fail(c, err)
		return
	}
	out := newStaffResponse(st)
	out.Token = token
	c.JSON(http.StatusCreated, out)
}

func (s *Server) listStaff(c *gin.Context) {
	if s.staff == nil {
		s.fail(c, errNoStaff)
		return
	}
	list, err := s.staff.List(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]staffResponse, len(list))
	for i := range list {
		out[i] = newStaffResponse(&list[i])
	}
	c.JSON(http.StatusOK, gin.H{"staff": out})
}

func (s *Server) removeStaff(c *gin.Context) {
	if s.staff == nil {
		s.fail(c, errNoStaff)
		return
	}
	if err := s.staff.Remove(c.Request.Context(), c.Param("name")); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

type auditResponse struct {
	ID         int64         `json:"id"`
	At         time.Time     `json:"at"`
	Actor      string        `json:"actor"`
	Role       activity.Role `json:"role"`
	Action     string        `json:"action"`
	ActivityID int64         `json:"activityId,omitempty"`
	Target     string        `json:"target,omitempty"`
	Before     rawJSON       `json:"before"`
	After      rawJSON       `json:"after"`
	RequestID  string        `json:"requestId,omitempty"`
}

// rawJSON is JSON kept as text; empty is null.
type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) {
	if r == "" {
		return []byte("null"), nil
	}
	return []byte(r), nil
}

// DefaultAuditPage is how many entries a page of the audit log holds
// unless ?limit= says otherwise.
const DefaultAuditPage = 50

func (s *Server) audit(c *gin.Context) {
	if s.staff == nil {
		s.fail(c, errNoStaff)
		return
	}
	f := activity.AuditFilter{Limit: DefaultAuditPage, Actor: c.Query("actor")}
	var limit int64 = DefaultAuditPage
	for _, q := range []struct {
		name string
		dst  *int64
		max  int64
	}{{"activityId", &f.ActivityID, 1<<63 - 1}, {"after", &f.Before, 1<<63 - 1}, {"limit", &limit, activity.MaxAuditPage}} {
		v, ok := c.GetQuery(q.name)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > q.max {
			s.fail(c, invalid(q.name, "must be an integer from 1 to "+strconv.FormatInt(q.max, 10)))
			return
		}
		*q.dst = n
	}
	f.Limit = int(limit)
	entries, err := s.staff.Audit(c.Request.Context(), f)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]auditResponse, len(entries))
	for i, e := range entries {
		out[i] = auditResponse{ID: e.ID, At: e.At, Actor: e.Actor, Role: e.Role, Action: e.Action, ActivityID: e.ActivityID,
			Target: e.Target, Before: rawJSON(e.Before), After: rawJSON(e.After), RequestID: e.RequestID}
	}
	body := gin.H{"entries": out}
	if len(entries) == f.Limit {
		body["next"] = strconv.FormatInt(entries[len(entries)-1].ID, 10)
	}
	c.JSON(http.StatusOK, body)
}
