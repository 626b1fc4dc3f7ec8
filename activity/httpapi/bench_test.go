package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"seckill/activity"
	"seckill/activity/httpapi"
	"seckill/activity/mysql"
	"seckill/internal/testenv"
)

// nopRecorder acknowledges every record at once, so the benchmark measures
// the handler and its Redis round trips, not Kafka or MySQL.
type nopRecorder struct{}

func (nopRecorder) Record(context.Context, activity.Participation) error { return nil }

// BenchmarkJoinHandler serves successful joins through the gin handler:
// decoding, validation, claim and confirm on the real Redis, the answer.
//
//	go test -run '^$' -bench JoinHandler -benchmem ./activity/httpapi/
func BenchmarkJoinHandler(b *testing.B) {
	env := testenv.New(b, testenv.Options{Recorder: func(*mysql.Repository) activity.Recorder { return nopRecorder{} }})
	a := env.OpenActivity(b, activity.MaxStock, 1)
	h := httpapi.New(env.Svc, httpapi.Config{AdminToken: "bench"})
	path := fmt.Sprintf("/api/v1/activities/%d/join", a.ID)
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := fmt.Sprintf(`{"userId":"u%d"}`, n.Add(1))
			req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}
