package mq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/eapache/go-resiliency/breaker"

	"seckill/activity"
)

// ProtocolVersion is the Kafka protocol version spoken; every broker from
// Kafka 2.8 on, Apache Kafka 4 and the embedded broker understand it.
func ProtocolVersion() sarama.KafkaVersion { return sarama.V2_8_0_0 }

// DefaultProduceTimeout bounds how long a join waits for the broker.
const DefaultProduceTimeout = 3 * time.Second

// Config is what the producer and the consumer need to know.
type Config struct {
	Brokers []string
	Topic   string
	// ProduceTimeout bounds a join's wait for the broker's acknowledgement;
	// DefaultProduceTimeout when zero.
	ProduceTimeout time.Duration
	// Group is the consumer group; "seckill" when empty.
	Group string
	// ReplicationFactor of the topics EnsureTopics creates; 0 =
	// min(DefaultReplicationFactor, live brokers).
	ReplicationFactor int
	// MinInsyncReplicas is the min.insync.replicas of the topics
	// EnsureTopics creates; 0 = min(DefaultMinInsyncReplicas,
	// replication factor).
	MinInsyncReplicas int
}

// DeadLetterTopic is where events that cannot be decoded are parked.
func (c Config) DeadLetterTopic() string { return c.Topic + ".dead" }

func (c Config) saramaConfig() *sarama.Config {
	s := sarama.NewConfig()
	s.ClientID = "seckill"
	s.Version = ProtocolVersion()
	s.Net.DialTimeout = 2 * time.Second
	s.Net.ReadTimeout = 10 * time.Second
	s.Net.WriteTimeout = 10 * time.Second
	s.Metadata.Retry.Max = 2
	s.Metadata.Retry.Backoff = 200 * time.Millisecond
	// Records that matter: acknowledged by every in-sync replica, written
	// once however often they are retried.
	s.Producer.RequiredAcks = sarama.WaitForAll
	s.Producer.Idempotent = true
	s.Net.MaxOpenRequests = 1
	s.Producer.Return.Successes = true
	s.Producer.Return.Errors = true
	s.Producer.Retry.Max = 3
	s.Producer.Retry.Backoff = 100 * time.Millisecond
	s.Producer.Timeout = 5 * time.Second
	s.Producer.Partitioner = sarama.NewHashPartitioner
	s.Consumer.Offsets.Initial = sarama.OffsetOldest
	s.Consumer.Offsets.AutoCommit.Interval = time.Second
	s.Consumer.Group.Session.Timeout = 6 * time.Second
	s.Consumer.Group.Heartbeat.Interval = 2 * time.Second
	s.Consumer.Return.Errors = true
	return s
}

// Producer publishes participation events and tells each caller when its own
// event is acknowledged. Concurrent joins share produce requests: while one
// request is in flight the next batch fills up. It implements
// activity.Recorder.
type Producer struct {
	cfg     *sarama.Config
	brokers []string
	topic   string
	timeout time.Duration

	mu      sync.RWMutex
	cur     *asyncProducer
	closed  bool
	rebuilt time.Time
	// Observe, when set, is told how long each event took and how it ended.
	Observe func(time.Duration, error)
}

// asyncProducer is one sarama AsyncProducer and the goroutines that hand
// each acknowledgement to the caller waiting for it.
type asyncProducer struct {
	ap sarama.AsyncProducer
	wg sync.WaitGroup
}

func newAsyncProducer(brokers []string, cfg *sarama.Config) (*asyncProducer, error) {
	ap, err := sarama.NewAsyncProducer(brokers, cfg)
	if err != nil {
		return nil, err
	}
	a := &asyncProducer{ap: ap}
	a.wg.Add(2)
	go func() {
		defer a.wg.Done()
		for m := range ap.Successes() {
			m.Metadata.(chan error) <- nil
		}
	}()
	go func() {
		defer a.wg.Done()
		for e := range ap.Errors() {
			e.Msg.Metadata.(chan error) <- e.Err
		}
	}()
	return a, nil
}

// close flushes what was accepted and waits until every caller is told.
func (a *asyncProducer) close() {
	a.ap.AsyncClose()
	a.wg.Wait()
}

// NewProducer connects an idempotent producer to the brokers.
func NewProducer(c Config) (*Producer, error) {
	p := &Producer{cfg: c.saramaConfig(), brokers: c.Brokers, topic: c.Topic, timeout: c.ProduceTimeout}
	if p.timeout <= 0 {
		p.timeout = DefaultProduceTimeout
	}
	cur, err := newAsyncProducer(p.brokers, p.cfg)
	if err != nil {
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	p.cur = cur
	return p, nil
}

var errClosed = errors.New("kafka producer closed")

// Record publishes a participation event and waits until the broker has
// acknowledged it. It returns an error wrapping activity.ErrUnavailable when
// the broker fails or does not answer within the produce timeout; the event
// may still be written later, and is then settled void.
func (p *Producer) Record(ctx context.Context, part activity.Participation) error {
	start := time.Now()
	err := p.record(ctx, part)
	if p.Observe != nil {
		p.Observe(time.Since(start), err)
	}
	if errors.Is(err, breaker.ErrBreakerOpen) {
		p.rebuild()
	}
	if err != nil {
		return activity.Unavailable("kafka", err)
	}
	return nil
}

func (p *Producer) record(ctx context.Context, part activity.Participation) error {
	b, err := EncodeEvent(part)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	done := make(chan error, 1)
	msg := &sarama.ProducerMessage{
		Topic:    p.topic,
		Key:      sarama.StringEncoder(strconv.FormatInt(part.ActivityID, 10)),
		Value:    sarama.ByteEncoder(b),
		Metadata: done,
	}
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return errClosed
	}
	select {
	case p.cur.ap.Input() <- msg:
		p.mu.RUnlock()
	case <-ctx.Done():
		p.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rebuild replaces the sarama producer after its circuit breaker opened.
// sarama keeps a partition's breaker open for ten seconds after three failed
// leader look-ups, so a producer that saw the broker go away would refuse
// every event of the hottest activity for ten seconds after the broker came
// back. A fresh producer does not; while the broker is still down, making
// one fails and the old one is kept. At most one attempt a second.
func (p *Producer) rebuild() {
	p.mu.Lock()
	if p.closed || time.Since(p.rebuilt) < time.Second {
		p.mu.Unlock()
		return
	}
	p.rebuilt = time.Now()
	p.mu.Unlock()
	fresh, err := newAsyncProducer(p.brokers, p.cfg)
	if err != nil {
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		fresh.close()
		return
	}
	old := p.cur
	p.cur = fresh
	p.mu.Unlock()
	go old.close()
}

// Close flushes the events already accepted and closes the producer.
func (p *Producer) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	cur := p.cur
	p.mu.Unlock()
	cur.close()
	return nil
}
