package httpapi

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"seckill/internal/inflight"
)

type metrics struct {
	joins            *prometheus.CounterVec
	joinsBy          map[string]prometheus.Counter // the joins counter of each outcome, resolved once
	joinLatency      prometheus.Histogram
	dependencyErrors *prometheus.CounterVec
	shed             map[string]prometheus.Counter // seckill_joins_shed_total of each reason
	redeems          *prometheus.CounterVec
	stockChanges     *prometheus.CounterVec
	exported         prometheus.Counter
	signInFailures   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, joins *inflight.Limiter) *metrics {
	m := &metrics{
		joins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seckill_joins_total",
			Help: "Join requests by outcome: ok, sold_out, slots_in_flight, limit_reached, not_open, not_found, invalid, unauthorized, too_large, rate_limited, shed, unavailable, error.",
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
	shed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "seckill_joins_shed_total",
		Help: "Joins answered 503 at once because too many were in progress, by reason: limit, queue_timeout, client_gone.",
	}, []string{"reason"})
	m.redeems = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "seckill_redeems_total",
		Help: "Token redeems by result: ok, or the error code of the answer (already_redeemed, not_found, unavailable, ...).",
	}, []string{"result"})
	m.stockChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "seckill_stock_changes_total",
		Help: "Stock changes asked of the admin API by result: ok, or the error code of the answer (stock_conflict, invalid_state, ...).",
	}, []string{"result"})
	m.exported = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "seckill_participations_exported_total",
		Help: "Valid participation records written by the export, in JSON pages and CSV.",
	})
	m.signInFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "seckill_admin_sign_in_failures_total",
		Help: "Admin API requests refused 401: no credential, or one that is not the admin token or a staff member's.",
	})
	reg.MustRegister(m.joins, m.joinLatency, m.dependencyErrors, shed, m.redeems, m.stockChanges, m.exported, m.signInFailures)
	// Every dependency's series from the start, at zero: rate() and the
	// dashboard see a failure from its first one.
	for dep := range dependencyNames {
		m.dependencyErrors.WithLabelValues(dep)
	}
	m.shed = map[string]prometheus.Counter{}
	for _, r := range shedReasons {
		m.shed[r] = shed.WithLabelValues(r)
	}
	if joins != nil {
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "seckill_join_limit",
				Help: "The most joins this instance takes in progress at once now (adaptive, or SECKILL_MAX_JOINS_IN_FLIGHT).",
			}, func() float64 { return float64(joins.Limit()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "seckill_joins_in_flight",
				Help: "Joins in progress on this instance, admitted past the limit's check.",
			}, func() float64 { return float64(joins.InFlight()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "seckill_joins_queued",
				Help: "Joins waiting up to SECKILL_JOIN_QUEUE_TIMEOUT for a place.",
			}, func() float64 { return float64(joins.Waiting()) }),
		)
	}
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
