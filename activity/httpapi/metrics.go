package httpapi

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"seckill/activity"
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
	for _, name := range []string{"ok", "error"} {
		m.joinsBy[name] = m.joins.WithLabelValues(name)
	}
	for _, o := range outcomes {
		m.joinsBy[o.name] = m.joins.WithLabelValues(o.name)
	}
	return m
}

var outcomes = []struct {
	err  error
	name string
}{
	{activity.ErrSoldOut, "sold_out"},
	{activity.ErrSlotsInFlight, "slots_in_flight"},
	{activity.ErrLimitReached, "limit_reached"},
	{activity.ErrNotOpen, "not_open"},
	{activity.ErrNotFound, "not_found"},
	{activity.ErrInvalid, "invalid"},
	{activity.ErrUnavailable, "unavailable"},
	{errTooLarge, "too_large"},
	{errRateLimited, "rate_limited"},
}

func (m *metrics) observeJoin(err error, d time.Duration) {
	m.joinLatency.Observe(d.Seconds())
	name := "ok"
	if err != nil {
		name = "error"
		for _, o := range outcomes {
			if errors.Is(err, o.err) {
				name = o.name
				break
			}
		}
	}
	m.joinsBy[name].Inc()
}
