package mq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"seckill/activity"
)

// Version is the Kafka protocol version spoken; every broker from Kafka 2.8
// on, Apache Kafka 4 and the embedded broker understand it.
var Version = sarama.V2_8_0_0

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
}

// DeadLetterTopic is where events that cannot be decoded are parked.
func (c Config) DeadLetterTopic() string { return c.Topic + ".dead" }

func (c Config) saramaConfig() *sarama.Config {
	s := sarama.NewConfig()
	s.ClientID = "seckill"
	s.Version = Version
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
	ap      sarama.AsyncProducer
	topic   string
	timeout time.Duration
	wg      sync.WaitGroup
	mu      sync.RWMutex
	closed  bool
	// Observe, when set, is told how long each acknowledged event took.
	Observe func(time.Duration, error)
}

// NewProducer connects an idempotent producer to the brokers.
func NewProducer(c Config) (*Producer, error) {
	ap, err := sarama.NewAsyncProducer(c.Brokers, c.saramaConfig())
	if err != nil {
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	p := &Producer{ap: ap, topic: c.Topic, timeout: c.ProduceTimeout}
	if p.timeout <= 0 {
		p.timeout = DefaultProduceTimeout
	}
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		for m := range ap.Successes() {
			m.Metadata.(chan error) <- nil
		}
	}()
	go func() {
		defer p.wg.Done()
		for e := range ap.Errors() {
			e.Msg.Metadata.(chan error) <- e.Err
		}
	}()
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
	if err != nil {
		return fmt.Errorf("%w: kafka: %w", activity.ErrUnavailable, err)
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
	case p.ap.Input() <- msg:
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

// Close flushes the events already accepted and closes the producer.
func (p *Producer) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.ap.AsyncClose()
	p.wg.Wait()
	return nil
}

// EnsureTopics creates the event topic and its dead-letter topic when they
// are missing.
func EnsureTopics(c Config, partitions int32) error {
	admin, err := sarama.NewClusterAdmin(c.Brokers, c.saramaConfig())
	if err != nil {
		return fmt.Errorf("kafka at %v: %w", c.Brokers, err)
	}
	defer admin.Close()
	topics, err := admin.ListTopics()
	if err != nil {
		return fmt.Errorf("kafka: list topics: %w", err)
	}
	for _, t := range []string{c.Topic, c.DeadLetterTopic()} {
		if _, ok := topics[t]; ok {
			continue
		}
		err := admin.CreateTopic(t, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("kafka: create topic %s: %w", t, err)
		}
	}
	return nil
}
