// Package httpapi serves the HTTP API of the service with gin: the admin
// endpoints for marketing staff, the join and token endpoints for users, and
// the operational endpoints.
package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"seckill/activity"
	"seckill/activity/httpapi/console"
	"seckill/internal/inflight"
	"seckill/internal/loggate"
)

// Check is a named readiness check of a dependency.
type Check struct {
	Name string
	Ping func(ctx context.Context) error
}

// Config configures a Server.
type Config struct {
	AdminToken string
	Checks     []Check
	Registry   *prometheus.Registry // metrics are registered here; a new one when nil
	Log        *slog.Logger
	// PerIP and PerUser limit the joins of one client address and of one
	// user of an activity; a zero Rate turns a limit off.
	PerIP, PerUser Limit
	// RateKeys bounds the keys each limit keeps (DefaultRateKeys when
	// zero): 16 bytes of bucket each, and the map's own share.
	RateKeys int
	// CORSOrigins are the browser origins allowed to call the API; none by
	// default.
	CORSOrigins []string
	// JoinsInFlight bounds the joins in progress: a join past it is
	// answered 503 at once, before anything is claimed. Answers known
	// without Redis (sold out, no such activity) and every other endpoint
	// pass it by. No bound when nil.
	JoinsInFlight *inflight.Limiter
	// Staff, when set, makes the credentials of staff accounts valid on
	// the admin API besides AdminToken, and serves the staff and audit
	// endpoints.
	Staff StaffService
	// Users says where a join's user comes from: the body's userId unless
	// set otherwise.
	Users UserAuth
	// SignInFailures limits the failed sign-ins of one client address:
	// past it, every admin request from there answers 429 until the bucket
	// refills. DefaultSignInFailures when zero; a negative Rate turns the
	// limit off.
	SignInFailures Limit
	// Tally, when set, counts each join answered by activity and outcome
	// (a token, sold out, at the limit, busy), in memory.
	Tally *activity.Tally
}

// DefaultSignInFailures allows a client address 10 failed sign-ins, then
// one more every 10 seconds (SECKILL_SIGN_IN_FAILURES's default).
var DefaultSignInFailures = Limit{Rate: 0.1, Burst: 10}

// StaffService is what the staff and audit endpoints ask of the domain.
// *activity.Staffing is one.
type StaffService interface {
	Actor(ctx context.Context, token string) (activity.Actor, error)
	Add(ctx context.Context, name string, role activity.Role) (*activity.Staff, string, error)
	List(ctx context.Context) ([]activity.Staff, error)
	Remove(ctx context.Context, name string) error
	Audit(ctx context.Context, f activity.AuditFilter) ([]activity.AuditEntry, error)
}

// ActivityService is what the admin endpoints ask of the domain.
// *activity.Service is one.
type ActivityService interface {
	Create(ctx context.Context, f activity.Fields) (*activity.Activity, error)
	Update(ctx context.Context, id int64, f activity.Fields) (*activity.Activity, error)
	Get(ctx context.Context, id int64) (*activity.Activity, error)
	List(ctx context.Context, f activity.ListFilter) (*activity.ActivityPage, error)
	Stats(ctx context.Context, a *activity.Activity) (*activity.Stats, error)
	Inspect(ctx context.Context, id int64) (*activity.Activity, *activity.Stats, error)
	Timeline(ctx context.Context, id int64, seconds int) (*activity.Timeline, error)
	Transition(ctx context.Context, id int64, action activity.Action) (*activity.Activity, error)
	ChangeStock(ctx context.Context, id, stock int64) (*activity.Activity, error)
	Duplicate(ctx context.Context, id int64, name *string) (*activity.Activity, error)
	Participations(ctx context.Context, id int64, after string, limit int) (*activity.ExportPage, error)
	Redeem(ctx context.Context, token string) (*activity.Participation, error)
}

// JoinService is what the user endpoints ask of the domain: an activity as
// users see it, a join, a token. *activity.Service is one.
type JoinService interface {
	Get(ctx context.Context, id int64) (*activity.Activity, error)
	Remaining(ctx context.Context, a *activity.Activity) (int64, error)
	KnownAnswer(activityID int64, idempotencyKey string) error
	Join(ctx context.Context, activityID int64, userID, idempotencyKey string) (*activity.Participation, error)
	Token(ctx context.Context, token string) (*activity.Participation, error)
}

// Service is all the Server asks of the domain.
type Service interface {
	ActivityService
	JoinService
}

var emptyHash = sha256.Sum256(nil)

// Server is the HTTP API. It is an http.Handler.
type Server struct {
	activities ActivityService
	joins      JoinService
	adminHash  [32]byte
	checks     []Check
	log        *slog.Logger
	logGate    loggate.Gate
	engine     *gin.Engine
	metrics    *metrics
	perIP      *limiter
	perUser    *limiter
	inFlight   *inflight.Limiter
	staff      StaffService
	authFails  *limiter
	users      userAuth
	tally      *activity.Tally
}

// New returns the HTTP API over svc.
func New(svc Service, cfg Config) *Server {
	gin.SetMode(gin.ReleaseMode)
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s := &Server{
		activities: svc,
		joins:      svc,
		adminHash:  sha256.Sum256([]byte(cfg.AdminToken)),
		checks:     cfg.Checks,
		log:        cfg.Log,
		metrics:    newMetrics(cfg.Registry, cfg.JoinsInFlight),
		perIP:      newLimiter(cfg.PerIP, cfg.RateKeys),
		perUser:    newLimiter(cfg.PerUser, cfg.RateKeys),
		inFlight:   cfg.JoinsInFlight,
		staff:      cfg.Staff,
		users:      newUserAuth(cfg.Users),
		tally:      cfg.Tally,
	}
	switch {
	case cfg.SignInFailures == (Limit{}):
		cfg.SignInFailures = DefaultSignInFailures
	case cfg.SignInFailures.Rate < 0:
		cfg.SignInFailures = Limit{}
	}
	s.authFails = newLimiter(cfg.SignInFailures, cfg.RateKeys)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	// A path with a trailing slash or another spelling is not redirected: it
	// answers 404 with the error JSON like any unknown path.
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.ContextWithFallback = true
	e.Use(requestID, s.recover, cors(cfg.CORSOrigins))
	e.NoRoute(func(c *gin.Context) {
		if c.Request.URL.Path == console.Prefix && c.Request.Method == http.MethodGet {
			c.Redirect(http.StatusMovedPermanently, console.Prefix+"/")
			return
		}
		s.fail(c, errNoRoute)
	})
	e.NoMethod(func(c *gin.Context) { s.fail(c, errNoMethod) })

	e.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{})))
	e.GET("/openapi.yaml", s.serveOpenAPI)
	console.Register(e)

	v1 := e.Group("/api/v1")
	v1.GET("/activities/:id", s.publicActivity)
	v1.POST("/activities/:id/join", s.join)
	v1.GET("/tokens/:token", s.token)

	// Each admin route names the roles it is for, besides admin: the
	// matrix of the README and the OpenAPI document.
	admin := v1.Group("/admin", s.authenticate)
	readers := []activity.Role{activity.RoleViewer, activity.RoleEditor, activity.RoleApprover, activity.RoleOperator}
	admin.GET("/me", s.me)
	admin.POST("/activities", s.allow("create activities", activity.RoleEditor), s.createActivity)
	// The draw reads activities too, to find the ones to export and redeem.
	withDraw := append(slices.Clone(readers), activity.RoleDraw)
	admin.GET("/activities", s.allow("read activities", withDraw...), s.listActivities)
	admin.GET("/activities/:id", s.allow("read activities", withDraw...), s.getActivity)
	// A draft's edit is an editor's, autoOpen of an approved one an
	// operator's: the domain tells them apart.
	admin.GET("/activities/:id/timeline", s.allow("read activities", withDraw...), s.timeline)
	admin.PATCH("/activities/:id", s.allow("edit activities", activity.RoleEditor, activity.RoleOperator), s.patchActivity)
	for _, a := range []activity.Action{activity.ActionApprove, activity.ActionRefuse} {
		admin.POST("/activities/:id/"+string(a), s.allow(string(a)+" activities", activity.RoleApprover), s.transition(a))
	}
	for _, a := range []activity.Action{activity.ActionOpen, activity.ActionClose} {
		admin.POST("/activities/:id/"+string(a), s.allow(string(a)+" activities", activity.RoleOperator), s.transition(a))
	}
	// A correction of an approved activity before it opens: the editor who
	// makes it, or the approver who finds it wrong.
	admin.POST("/activities/:id/draft", s.allow("return activities to draft", activity.RoleEditor, activity.RoleApprover),
		s.transition(activity.ActionDraft))
	admin.POST("/activities/:id/duplicate", s.allow("duplicate activities", activity.RoleEditor), s.duplicate)
	admin.POST("/activities/:id/stock", s.allow("change the stock", activity.RoleOperator), s.changeStock)
	admin.GET("/activities/:id/participations", s.allow("export participations", withDraw...), s.participations)
	admin.POST("/tokens/:token/redeem", s.allow("redeem tokens", activity.RoleDraw), s.redeem)
	admin.GET("/audit", s.allow("read the audit log", readers...), s.audit)
	admin.GET("/staff", s.allow("manage staff"), s.listStaff)
	admin.POST("/staff", s.allow("manage staff"), s.addStaff)
	admin.DELETE("/staff/:name", s.allow("manage staff"), s.removeStaff)
	s.engine = e
	return s
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

// recover turns a panic into a 500 with the error JSON, logged without a
// stack dump of request data.
func (s *Server) recover(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			s.log.Error("handler panic", "path", c.FullPath(), "requestId", requestIDOf(c), "panic", fmt.Sprint(r))
			s.fail(c, fmt.Errorf("panic: %v", r))
		}
	}()
	c.Next()
}

func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	var down []string
	for _, ch := range s.checks {
		if err := ch.Ping(ctx); err != nil {
			down = append(down, ch.Name+": "+err.Error())
		}
	}
	if len(down) > 0 {
		c.JSON(http.StatusServiceUnavailable, errorBody{errorDetail{Code: "unavailable",
			Message: "not ready: " + strings.Join(down, "; ")}})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// id reads the :id path parameter: a positive integer.
func id(c *gin.Context) (int64, error) {
	n, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || n < 1 {
		return 0, invalid("id", "must be a positive integer")
	}
	return n, nil
}

func (s *Server) createActivity(c *gin.Context) {
	var req activityRequest
	if err := decode(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	f, err := req.fields()
	if err != nil {
		s.fail(c, err)
		return
	}
	a, err := s.activities.Create(c.Request.Context(), f)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, newActivityResponse(a, nil))
}

func (s *Server) listActivities(c *gin.Context) {
	f := activity.ListFilter{Limit: 20}
	if v, ok := c.GetQuery("state"); ok {
		f.State = activity.State(v)
		if !f.State.Valid() {
			s.fail(c, invalid("state", "must be one of draft, approved, refused, open, closed"))
			return
		}
	}
	if v, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			s.fail(c, invalid("limit", "must be between 1 and 100"))
			return
		}
		f.Limit = n
	}
	if v, ok := c.GetQuery("offset"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1_000_000 {
			s.fail(c, invalid("offset", "must be between 0 and 1000000"))
			return
		}
		f.Offset = n
	}
	if v, ok := c.GetQuery("q"); ok {
		if v == "" {
			s.fail(c, invalid("q", "must be 1 to 128 characters"))
			return
		}
		f.Query = v
	}
	if v, ok := c.GetQuery("sort"); ok {
		f.Sort = activity.ListSort(v)
		if f.Sort == "" || !f.Sort.Valid() {
			s.fail(c, invalid("sort", "must be one of created, beginAt, -beginAt"))
			return
		}
	}
	page, err := s.activities.List(c.Request.Context(), f)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]activityResponse, len(page.Activities))
	for i, a := range page.Activities {
		out[i] = newActivityResponse(a, nil)
	}
	c.JSON(http.StatusOK, gin.H{"activities": out, "limit": f.Limit, "offset": f.Offset, "total": page.Total})
}

func (s *Server) getActivity(c *gin.Context) {
	n, err := id(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	a, st, err := s.activities.Inspect(c.Request.Context(), n)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, newActivityResponse(a, st))
}

// DefaultTimeline is how many seconds a timeline covers unless ?seconds=
// says otherwise.
const DefaultTimeline = 600

type secondResponse struct {
	At      time.Time `json:"at"`
	Joins   int64     `json:"joins"`
	Winners int64     `json:"winners"`
}

type peakResponse struct {
	At    time.Time `json:"at"`
	Joins int64     `json:"joins"`
}

func (s *Server) timeline(c *gin.Context) {
	n, err := id(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	seconds := DefaultTimeline
	if v, ok := c.GetQuery("seconds"); ok {
		if seconds, err = strconv.Atoi(v); err != nil || seconds < 1 || seconds > activity.MaxTimeline {
			s.fail(c, invalid("seconds", fmt.Sprintf("must be between 1 and %d", activity.MaxTimeline)))
			return
		}
	}
	tl, err := s.activities.Timeline(c.Request.Context(), n, seconds)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]secondResponse, len(tl.Seconds))
	for i, sec := range tl.Seconds {
		out[i] = secondResponse{At: time.Unix(sec.At, 0).UTC(), Joins: sec.Joins, Winners: sec.Winners}
	}
	var peak *peakResponse
	if !tl.PeakAt.IsZero() {
		peak = &peakResponse{At: tl.PeakAt, Joins: tl.PeakJoins}
	}
	c.JSON(http.StatusOK, gin.H{"seconds": out, "peak": peak})
}

func (s *Server) patchActivity(c *gin.Context) {
	n, err := id(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var req activityRequest
	if err := decode(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	f, err := req.fields()
	if err != nil {
		s.fail(c, err)
		return
	}
	a, err := s.activities.Update(c.Request.Context(), n, f)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, newActivityResponse(a, nil))
}

func (s *Server) transition(action activity.Action) gin.HandlerFunc {
	return func(c *gin.Context) {
		n, err := id(c)
		if err != nil {
			s.fail(c, err)
			return
		}
		a, err := s.activities.Transition(c.Request.Context(), n, action)
		if err != nil {
			s.fail(c, err)
			return
		}
		c.JSON(http.StatusOK, newActivityResponse(a, nil))
	}
}

// duplicateRequest is the optional body of a duplicate.
type duplicateRequest struct {
	Name *string `json:"name"`
}

func (s *Server) duplicate(c *gin.Context) {
	n, err := id(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	body, err := readBody(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var req duplicateRequest
	if len(bytes.TrimSpace(body)) > 0 {
		if err := decodeBody(body, &req); err != nil {
			s.fail(c, err)
			return
		}
	}
	a, err := s.activities.Duplicate(c.Request.Context(), n, req.Name)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, newActivityResponse(a, nil))
}

func (s *Server) publicActivity(c *gin.Context) {
	n, err := id(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	a, err := s.joins.Get(ctx, n)
	if err == nil && !a.State.Public() {
		err = activity.ErrNotFound
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	left, err := s.joins.Remaining(ctx, a)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, publicActivityResponse{ID: a.ID, Name: a.Name, Description: a.Description,
		BeginAt: a.BeginAt, EndAt: a.EndAt, State: a.State, Remaining: left})
}

func (s *Server) join(c *gin.Context) {
	start := time.Now()
	p, err := s.joinOnce(c)
	s.metrics.observeJoin(err, time.Since(start))
	s.countJoin(c, err)
	if err != nil {
		s.fail(c, err)
		return
	}
	writeToken(c, p)
}

// countJoin counts a join answered with err in the tally, by activity and
// outcome: a token, sold out, at the limit, or busy (slots in flight; shed
// or rate limited, which are counted only for an activity the tally knows:
// they are answered before the id is looked up). Other answers are not
// counted.
func (s *Server) countJoin(c *gin.Context, err error) {
	if s.tally == nil {
		return
	}
	outcome, early := activity.JoinWon, false
	switch {
	case err == nil:
	case errors.Is(err, activity.ErrSoldOut):
		outcome = activity.JoinSoldOut
	case errors.Is(err, activity.ErrLimitReached):
		outcome = activity.JoinLimitReached
	case errors.Is(err, activity.ErrSlotsInFlight):
		outcome = activity.JoinBusy
	case errors.Is(err, errShed), errors.Is(err, errRateLimited):
		early = true
	default:
		return
	}
	n, perr := strconv.ParseInt(c.Param("id"), 10, 64)
	if perr != nil || n < 1 {
		return
	}
	if early {
		s.tally.CountBusy(n, time.Now())
		return
	}
	s.tally.Count(n, outcome, time.Now())
}

// writeToken answers 200 with a participation's token.
func writeToken(c *gin.Context, p *activity.Participation) {
	c.Data(http.StatusOK, "application/json; charset=utf-8", appendToken(make([]byte, 0, 192), p))
}

func (s *Server) joinOnce(c *gin.Context) (*activity.Participation, error) {
	if !s.perIP.allow(clientIP(c.Request)) {
		return nil, errRateLimited
	}
	n, err := id(c)
	if err != nil {
		return nil, err
	}
	// Who asks is settled before the body is read: a caller without a
	// valid identity learns nothing more.
	verified, err := s.verifiedUser(c)
	if err != nil {
		return nil, err
	}
	body, err := readBody(c)
	if err != nil {
		return nil, err
	}
	user, err := joinUser(verified, body)
	if err != nil {
		return nil, err
	}
	ctx, key := c.Request.Context(), c.GetHeader("Idempotency-Key")
	if !activity.ValidUserID(user) || (key != "" && !activity.ValidIdempotencyKey(key)) {
		return s.joins.Join(ctx, n, user, key) // answers which field is wrong
	}
	// What is known without Redis is answered before the bound on joins in
	// flight: it costs next to nothing and must not wait behind joins.
	if err := s.joins.KnownAnswer(n, key); err != nil {
		return nil, err
	}
	permit, err := s.admit(ctx)
	if err != nil {
		return nil, err
	}
	return s.joinAdmitted(ctx, permit, n, user, key)
}

// joinAdmitted runs a join that holds permit, a place among the joins in
// flight, and gives the place back however the join ends, a panic included.
func (s *Server) joinAdmitted(ctx context.Context, permit inflight.Permit, n int64, user, key string) (p *activity.Participation, err error) {
	returned := false
	defer func() {
		if returned && measured(err) {
			permit.Done()
		} else {
			permit.Ignore()
		}
	}()
	// Only a well-formed user counts against the per-user limit, keyed by
	// the activity's number however its id was spelt; a key made for an
	// activity that does not exist is dropped at once.
	userKey := strconv.FormatInt(n, 10) + ":" + user
	if !s.perUser.allow(userKey) {
		return nil, errRateLimited
	}
	p, err = s.joins.Join(ctx, n, user, key)
	returned = true
	if errors.Is(err, activity.ErrNotFound) {
		s.perUser.forget(userKey)
	}
	return p, err
}

// admit takes a place among the joins in flight, or returns errShed (with
// the limiter's reason) and counts the shed join by reason.
func (s *Server) admit(ctx context.Context) (inflight.Permit, error) {
	if s.inFlight == nil {
		return inflight.Permit{}, nil
	}
	p, err := s.inFlight.Acquire(ctx)
	if err != nil {
		reason := shedReason(err)
		s.metrics.shed[reason].Inc()
		return p, fmt.Errorf("%w: %s", errShed, reason)
	}
	return p, nil
}

// Reasons a join is shed, the label of seckill_joins_shed_total.
const (
	shedLimit        = "limit"         // every place taken, no wait allowed or the queue full
	shedQueueTimeout = "queue_timeout" // waited SECKILL_JOIN_QUEUE_TIMEOUT for a place in vain
	shedClientGone   = "client_gone"   // the client hung up while it waited
)

var shedReasons = []string{shedLimit, shedQueueTimeout, shedClientGone}

func shedReason(err error) string {
	switch {
	case errors.Is(err, inflight.ErrQueueTimeout):
		return shedQueueTimeout
	case errors.Is(err, inflight.ErrLimit):
		return shedLimit
	}
	return shedClientGone
}

// measured tells whether a join that ended with err did the work whose
// latency the adaptive limit follows: a token, claimed, recorded through
// Kafka and confirmed. Answers Redis gives alone (sold out, the user at the
// limit) are much faster and would pull the mean and the fastest join down
// to a latency no token join has; a dependency that failed, or a client
// gone, says nothing of the load.
func measured(err error) bool { return err == nil }

func (s *Server) token(c *gin.Context) {
	p, err := s.joins.Token(c.Request.Context(), c.Param("token"))
	if err != nil {
		s.fail(c, err)
		return
	}
	writeToken(c, p)
}
