package main

import (
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"seckill/activity"
	"seckill/mq"
)

// metrics are the Prometheus collectors of the background work; the HTTP
// layer registers its own.
type metrics struct {
	produceLatency prometheus.Histogram
	produceErrors  prometheus.Counter
	stages         *prometheus.HistogramVec
	consumerLag    *prometheus.GaugeVec
	partitions     prometheus.Gauge
	held           prometheus.Gauge
	recordsWritten prometheus.Counter
	reconcileTime  prometheus.Histogram
	reconcileFails prometheus.Counter
	leasesReaped   prometheus.Counter
	settled        *prometheus.CounterVec
	closedBySched  prometheus.Counter
	openedBySched  prometheus.Counter
	inFlight       prometheus.Gauge
	drift          prometheus.Gauge
	published      prometheus.Counter
	publishFails   prometheus.Counter
	publishWaiting prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		produceLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "seckill_kafka_produce_duration_seconds", Help: "Time from handing a participation event to the producer until the broker acknowledged it.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		stages: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "seckill_join_stage_duration_seconds", Help: "Time each stage of a join took, by stage: claim (the claim script in Redis), record (the event's acknowledgement by the broker), confirm (the confirm script in Redis).",
			Buckets: []float64{.0001, .00025, .0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"stage"}),
		produceErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seckill_kafka_produce_errors_total", Help: "Participation events the broker did not acknowledge in time (the join answered 503).",
		}),
		consumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seckill_kafka_consumer_lag", Help: "Events on the partition not yet written into MySQL, as of the last batch.",
		}, []string{"partition"}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "seckill_job_activities_held", Help: "Live activities whose periodic work this instance holds the lease of, as of its last reconcile cycle.",
		}),
		partitions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "seckill_kafka_partitions_assigned", Help: "Partitions of the event topic this instance consumes, as of the last rebalance.",
		}),
		recordsWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seckill_records_written_total", Help: "Participation records the consumer wrote into MySQL (redeliveries included).",
		}),
		reconcileTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "seckill_reconcile_duration_seconds", Help: "Duration of one reconcile job cycle.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		reconcileFails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seckill_reconcile_errors_total", Help: "Reconcile job cycles that failed (Redis or MySQL unavailable).",
		}),
		leasesReaped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seckill_leases_reaped_total", Help: "Claims given back by the job after their lease ran out.",
		}),
		settled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seckill_records_settled_total", Help: "Pending participation records the job settled, by status (valid, void); most records are stored settled by the consumer and never pending.",
		}, []string{"status"}),
		closedBySched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seckill_activities_closed_by_schedule_total", Help: "Open activities the job closed because their endAt had passed.",
		}),
		openedBySched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seckill_activities_opened_by_schedule_total", Help: "Approved activities with autoOpen the job opened (preheat included) as their beginAt came; sum over instances: each is opened once.",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "seckill_claims_in_flight", Help: "Claims neither confirmed nor given back yet, over the live activities whose periodic work this instance holds, as of its last reconcile cycle; sum over instances for the whole.",
		}),
		drift: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "seckill_reconcile_drift", Help: "Tokens issued minus valid records in MySQL over the live activities whose periodic work this instance holds, as of its last reconcile cycle; sum over instances for the whole; stays near zero when MySQL keeps up.",
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seckill_tokens_published_total", Help: "Tokens the broker acknowledged on the tokens topic (a token published again after a crash or a failed mark counts again).",
		}),
		publishFails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seckill_tokens_publish_errors_total", Help: "Cycles of the token publisher that failed (MySQL, Redis or Kafka unavailable); the tokens wait in the outbox.",
		}),
		publishWaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "seckill_tokens_unpublished_age_seconds", Help: "Seconds since the oldest valid token not yet published was issued, as of the token publisher's last cycle; 0 when none waits or another instance publishes: max over instances.",
		}),
	}
	for _, st := range []string{activity.StageClaim, activity.StageRecord, activity.StageConfirm} {
		m.stages.WithLabelValues(st) // every stage's series from the start, at zero
	}
	reg.MustRegister(m.inFlight, m.drift, m.produceLatency, m.stages, m.produceErrors, m.consumerLag, m.partitions, m.held, m.recordsWritten, m.reconcileTime,
		m.reconcileFails, m.leasesReaped, m.settled, m.closedBySched, m.openedBySched, m.published, m.publishFails, m.publishWaiting)
	return m
}

func (m *metrics) observeProduce(d time.Duration, err error) {
	if err != nil {
		m.produceErrors.Inc()
		return
	}
	m.produceLatency.Observe(d.Seconds())
}

// observeStage counts one stage of a join. The histograms are looked up
// once: a join observes three.
func (m *metrics) observeStage() func(string, time.Duration) {
	hs := map[string]prometheus.Observer{}
	for _, st := range []string{activity.StageClaim, activity.StageRecord, activity.StageConfirm} {
		hs[st] = m.stages.WithLabelValues(st)
	}
	return func(stage string, d time.Duration) {
		if h, ok := hs[stage]; ok {
			h.Observe(d.Seconds())
		}
	}
}

func (m *metrics) watchConsumer(c *mq.Consumer) {
	var mu sync.Mutex
	owned := map[int32]bool{} // partitions with a lag series here
	c.Lag = func(p int32, lag int64) {
		mu.Lock()
		defer mu.Unlock()
		owned[p] = true
		m.consumerLag.WithLabelValues(strconv.Itoa(int(p))).Set(float64(lag))
	}
	c.Written = func(n int) { m.recordsWritten.Add(float64(n)) }
	// A partition that moved to another instance is its lag's business
	// now: a series left here would be counted twice by sum().
	c.Assigned = func(ps []int32) {
		mu.Lock()
		defer mu.Unlock()
		for p := range owned {
			if !slices.Contains(ps, p) {
				m.consumerLag.DeleteLabelValues(strconv.Itoa(int(p)))
				delete(owned, p)
			}
		}
		m.partitions.Set(float64(len(ps)))
	}
}

func (m *metrics) observeCycle(r activity.ReconcileReport, d time.Duration, err error) {
	m.reconcileTime.Observe(d.Seconds())
	if err != nil {
		m.reconcileFails.Inc()
	}
	// Set after a failed cycle too, as long as it read the live activities:
	// the report covers those this instance worked on, and a gauge kept
	// from before would count an activity that moved to another instance
	// twice in a sum. A cycle that could not read them (MySQL down) leaves
	// the gauges as they were rather than say zero.
	if err == nil || r.Activities > 0 {
		m.inFlight.Set(float64(r.InFlight))
		m.drift.Set(float64(r.Drift))
		m.held.Set(float64(r.Activities - r.Elsewhere))
	}
	m.leasesReaped.Add(float64(r.Reaped))
	m.settled.WithLabelValues("valid").Add(float64(r.Valid))
	m.settled.WithLabelValues("void").Add(float64(r.Void))
	m.closedBySched.Add(float64(r.Closed))
	m.openedBySched.Add(float64(r.Opened))
}

func (m *metrics) watchPublisher(p *mq.TokenPublisher) {
	p.Published = func(n int) { m.published.Add(float64(n)) }
	p.Failed = m.publishFails.Inc
	p.Waiting = func(d time.Duration) { m.publishWaiting.Set(d.Seconds()) }
}
