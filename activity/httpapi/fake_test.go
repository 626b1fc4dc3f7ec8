package httpapi_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"seckill/activity"
	"seckill/activity/httpapi"
	"seckill/internal/testenv"
)

// fakeService is a Service that answers what a test sets, for what the HTTP
// layer does on its own (decoding, the error table, middleware) without
// Redis or MariaDB. The methods it does not define are those of a nil
// Service: a call the test did not expect panics, and the Server answers 500.
type fakeService struct {
	httpapi.Service

	joinErr   error // what Join returns; a token when nil
	joinPanic any   // when not nil, Join panics with it

	mu     sync.Mutex
	joins  []fakeJoin        // the joins asked for
	fields []activity.Fields // what Create and Update were given
}

// fakeJoin is one call of Join.
type fakeJoin struct {
	activityID  int64
	userID, key string
}

func (f *fakeService) KnownAnswer(int64, string) error { return nil }

func (f *fakeService) Join(_ context.Context, activityID int64, userID, key string) (*activity.Participation, error) {
	f.mu.Lock()
	f.joins = append(f.joins, fakeJoin{activityID: activityID, userID: userID, key: key})
	f.mu.Unlock()
	if f.joinPanic != nil {
		panic(f.joinPanic)
	}
	if f.joinErr != nil {
		return nil, f.joinErr
	}
	return &activity.Participation{Token: "token-of-" + userID, ActivityID: activityID, Slot: 1, UserID: userID,
		IssuedAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}, nil
}

func (f *fakeService) Create(_ context.Context, fl activity.Fields) (*activity.Activity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fields = append(f.fields, fl)
	return &activity.Activity{ID: 1, State: activity.StateDraft}, nil
}

func (f *fakeService) Update(_ context.Context, id int64, fl activity.Fields) (*activity.Activity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fields = append(f.fields, fl)
	return &activity.Activity{ID: id, State: activity.StateDraft}, nil
}

// calls returns how many joins, creates and updates the fake was asked for.
func (f *fakeService) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.joins) + len(f.fields)
}

// newFakeAPI is a Server over fake, configured by cfg with the admin token
// of the tests, logging into the returned log.
func newFakeAPI(t testing.TB, fake *fakeService, cfg httpapi.Config) (*api, *testenv.Buffer) {
	t.Helper()
	log := &testenv.Buffer{}
	cfg.AdminToken = adminToken
	cfg.Log = slog.New(slog.NewTextHandler(log, nil))
	return &api{h: httpapi.New(fake, cfg)}, log
}
