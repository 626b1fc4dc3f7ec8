package httpapi

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	joins            *prometheus.CounterVec
	joinsBy          map[string]prometheus.Counter // the joins counter of each outcome, resolved once
	joinLatency      prometheus.Histogram
	dependencyErrors *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		joins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seckill_joins_total",
			Help: "Join requests by outcome: ok, sold_out, limit_reached, not_open, not_found, invalid, unavailable, too_large, rate_limited, error.",
		}, []string{"outcome"}),
		joinLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "seckill_join_duration_seconds",
			Help:    "Time to answer a join request.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		dependencyErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seckill_dependency_errors_total",
			Help: "Requests answered 503 because a dependency failed, by dependency: redis, mysql, kafka.",
		}, []string{"dependency"}),
	}
	reg.MustRegister(m.joins, m.joinLatency, m.dependencyErrors)
	m.joinsBy = map[string]prometheus.Counter{}
	for _, name := range []string{"ok", internalError.outcome} {
		m.joinsBy[name] = m.joins.WithLabelValues(name)
	}
	for _, a := range errorTable {
		m.joinsBy[a.outcome] = m.joins.WithLabelValues(a.outcome)
	}
	return m
}

// observeJoin counts a join answered err (nil for a token) under the outcome
// of its answer.
func (m *metrics) observeJoin(err error, d time.Duration) {
	m.joinLatency.Observe(d.Seconds())
	outcome := "ok"
	if err != nil {
		outcome = answerTo(err).outcome
	}
	m.joinsBy[outcome].Inc()
}
