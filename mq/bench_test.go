package mq_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"seckill/internal/testenv"
	"seckill/mq"
)

// BenchmarkConsumerRecords measures how many participation records per
// second the consumer writes into MySQL: b.N events wait on the topic, then
// one consumer drains them.
//
//	go test -run '^$' -bench ConsumerRecords -benchtime 50000x ./mq/
func BenchmarkConsumerRecords(b *testing.B) {
	e := startBroker(b)
	cfg := newConfig(b, e)
	db := testenv.MySQL(b)
	ps := makeParticipations(b, 1, b.N)
	p := newProducer(b, cfg)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, part := range ps {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := p.Record(context.Background(), part); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	b.ResetTimer()
	start := time.Now()
	startConsumer(b, cfg, db, nil)
	waitRows(b, db, 1, b.N)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkProducerRecord measures acknowledged events per second with 64
// joins waiting on the producer at once, as the join path does. With
// SECKILL_BENCH_BROKERS (host:port, comma-separated) it produces to those
// brokers instead of one in the test process, so that the CPU the process
// uses is the producer's alone:
//
//	go test -run '^$' -bench ProducerRecord ./mq/
//	seckill broker -broker-addr 127.0.0.1:19092 -kafka-data-dir "$(mktemp -d)" &
//	SECKILL_BENCH_BROKERS=127.0.0.1:19092 go test -run '^$' -bench ProducerRecord ./mq/
func BenchmarkProducerRecord(b *testing.B) {
	var cfg mq.Config
	if addrs := os.Getenv("SECKILL_BENCH_BROKERS"); addrs != "" {
		cfg = newConfigAt(b, strings.Split(addrs, ","))
	} else {
		cfg = newConfig(b, startBroker(b))
	}
	p := newProducer(b, cfg)
	ps := makeParticipations(b, 1, 4096)
	var n atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := p.Record(context.Background(), ps[n.Add(1)%int64(len(ps))]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
