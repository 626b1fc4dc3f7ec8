package baselines

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"
)

// Options tune the designs that retry. Zero values take the defaults.
type Options struct {
	// OptimisticAttempts bounds the tries of design (c); 20 by default.
	OptimisticAttempts int
	// OptimisticBackoff is the first backoff of (c), doubled per retry up to
	// 16×, each a random value in [d/2, d]; 10 ms by default.
	OptimisticBackoff time.Duration
	// LockTries bounds the SET NX tries of design (d); 500 by default, so a
	// join waits at most about LockTries × LockRetryDelay for the lock.
	LockTries int
	// LockRetryDelay is the delay between tries of (d), a random value in
	// [d/2, d]; 4 ms by default, the best of 1, 2, 4 and 8 ms here
	// (redsync's default, 50–250 ms, leaves the lock idle most of the time
	// on a hot activity; shorter delays spend the CPU on failed SET NX).
	LockRetryDelay time.Duration
	// LockExpiry is the lock's TTL; redsync's 8 s by default.
	LockExpiry time.Duration
}

func (o *Options) defaults() {
	if o.OptimisticAttempts <= 0 {
		o.OptimisticAttempts = 20
	}
	if o.OptimisticBackoff <= 0 {
		o.OptimisticBackoff = 10 * time.Millisecond
	}
	if o.LockTries <= 0 {
		o.LockTries = 500
	}
	if o.LockRetryDelay <= 0 {
		o.LockRetryDelay = 4 * time.Millisecond
	}
	if o.LockExpiry <= 0 {
		o.LockExpiry = 8 * time.Second
	}
}

// Config is what the baseline server needs.
type Config struct {
	DB    *sql.DB
	Redis redis.UniversalClient
	// Prefix starts every Redis key of the baselines.
	Prefix string
	// Brokers and Topic are seed 002's Kafka.
	Brokers []string
	Topic   string
	Options Options
	Log     *slog.Logger
}

// Server serves one join endpoint per design and the bare ceiling.
type Server struct {
	db     *sql.DB
	rdb    redis.UniversalClient
	prefix string
	opt    Options
	log    *slog.Logger
	kafka  *kafka
	stocks sync.Map // activity id -> stock, for seed 002
	engine *gin.Engine
	mux    *http.ServeMux
}

// New connects seed 002's producer and consumer and builds the routes. It
// returns an error when Kafka does not answer.
func New(cfg Config) (*Server, error) {
	cfg.Options.defaults()
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{db: cfg.DB, rdb: cfg.Redis, prefix: cfg.Prefix, opt: cfg.Options, log: cfg.Log}
	k, err := startKafka(cfg.Brokers, cfg.Topic, cfg.DB)
	if err != nil {
		return nil, err
	}
	s.kafka = k
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	plain := map[string]func(context.Context, int64, string) (int64, error){
		"conditional": s.conditional,
		"forupdate":   s.forUpdate,
		"optimistic":  s.optimistic,
		"redislock":   s.redisLock,
	}
	for _, d := range Designs {
		if f, ok := plain[d.Name]; ok {
			e.POST("/api/v1/"+d.Name+"/activities/:id/join", s.join(d.Key, func(ctx context.Context, id int64, user string) (int64, int64, error) {
				rec, err := f(ctx, id, user)
				return rec, 0, err
			}))
		}
	}
	e.POST("/api/v1/seed002/activities/:id/join", s.join("e", s.seed002))
	s.engine = e
	// The ceiling is plain net/http, not gin: the cheapest way Go serves
	// the same request and answer.
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST "+CeilingPath, ceiling)
	s.mux.Handle("/", e)
	return s, nil
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Dropped returns how many fire-and-forget messages of seed 002 were lost
// (broker errors nobody waited for).
func (s *Server) Dropped() int64 { return s.kafka.dropped.Load() }

// Close stops seed 002's producer and consumer, writing the last snapshots.
func (s *Server) Close(ctx context.Context) { s.kafka.close(ctx, s.db) }

type joinRequest struct {
	UserID string `json:"userId"`
}

type tokenResponse struct {
	Token      string    `json:"token"`
	ActivityID int64     `json:"activityId"`
	Slot       int64     `json:"slot"`
	UserID     string    `json:"userId"`
	IssuedAt   time.Time `json:"issuedAt"`
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func fail(c *gin.Context, status int, code, msg string) {
	c.JSON(status, errorBody{Error: errorDetail{Code: code, Message: msg}})
}

// decode reads the body the way the service's join handler does: at most
// 8 KiB, unknown fields refused, one object.
func decode(c *gin.Context, dst any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, 8<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		fail(c, http.StatusBadRequest, "invalid_request", "body is not a valid join request")
		return false
	}
	return true
}

func validUserID(u string) bool {
	if len(u) == 0 || len(u) > 64 {
		return false
	}
	for i := 0; i < len(u); i++ {
		switch ch := u[i]; {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9', ch == '_', ch == '.', ch == '-':
		default:
			return false
		}
	}
	return true
}

func (s *Server) join(key string, f func(context.Context, int64, string) (int64, int64, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, err := strconv.ParseInt(c.Param("id"), 10, 64)
		if err != nil || id <= 0 {
			fail(c, http.StatusBadRequest, "invalid_request", "id must be a positive integer")
			return
		}
		var req joinRequest
		if !decode(c, &req) {
			return
		}
		if !validUserID(req.UserID) {
			fail(c, http.StatusBadRequest, "invalid_request", "userId must be 1 to 64 characters of A-Z a-z 0-9 _ . -")
			return
		}
		rec, slot, err := f(c.Request.Context(), id, req.UserID)
		switch {
		case err == nil:
			c.JSON(http.StatusOK, tokenResponse{
				Token:      key + "-" + strconv.FormatInt(id, 10) + "-" + strconv.FormatInt(rec, 10),
				ActivityID: id, Slot: slot, UserID: req.UserID, IssuedAt: time.Now().UTC().Truncate(time.Millisecond),
			})
		case errors.Is(err, errSoldOut):
			fail(c, http.StatusConflict, "sold_out", "no slot left")
		case errors.Is(err, errLimit):
			fail(c, http.StatusConflict, "limit_reached", "the user already holds a slot")
		case errors.Is(err, errBusy):
			fail(c, http.StatusServiceUnavailable, "unavailable", "gave up: lock taken or retries exhausted")
		default:
			s.log.Warn("join failed", "design", key, "err", err)
			fail(c, http.StatusServiceUnavailable, "unavailable", "dependency failed; nothing was taken")
		}
	}
}

// ceiling reads the join's body and writes a token's answer of the same
// shape and size as the service's (a token of the same length, an
// activity, a slot, the user, a time) with encoding/json, and does nothing
// else.
func ceiling(w http.ResponseWriter, r *http.Request) {
	var req joinRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.UserID == "" {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(errorBody{Error: errorDetail{Code: "invalid_request", Message: "body is not a valid join request"}}) // the client went away
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(tokenResponse{Token: ceilingToken, ActivityID: 1, Slot: ceilingSlot.Add(1), UserID: req.UserID,
		IssuedAt: time.Now().UTC().Truncate(time.Millisecond)}) // the client went away
}

// ceilingToken is as long as the service's tokens (base64url of 40 bytes).
const ceilingToken = "AAAAAAAAACoAAAARbm9uY2Utbm9uY2Utbm9uY2VfbWFjLW1hYy1tYW"

var ceilingSlot atomic.Int64
