package mq

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"

	"seckill/activity"
)

// ProtocolVersion is the Kafka protocol version spoken by the sarama clients
// (consumer, dead-letter producer, admin); the producer is held to the same
// version. Every broker from Kafka 2.8 on, Apache Kafka 4 and the embedded
// broker understand it.
func ProtocolVersion() sarama.KafkaVersion { return sarama.V2_8_0_0 }

// Network timeouts of every client, sarama's and the producer's.
const (
	dialTimeout = 2 * time.Second
	ioTimeout   = 10 * time.Second
)

// DefaultProduceTimeout bounds how long a join waits for the broker.
const DefaultProduceTimeout = 3 * time.Second

// Config is what the producer and the consumer need to know.
type Config struct {
	Brokers []string
	Topic   string
	// TokensTopic is where the token publisher writes the tokens settled
	// valid; EnsureTopics creates it too when it is set.
	TokensTopic string
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
	s.Net.DialTimeout = dialTimeout
	s.Net.ReadTimeout = ioTimeout
	s.Net.WriteTimeout = ioTimeout
	s.Metadata.Retry.Max = 2
	s.Metadata.Retry.Backoff = 200 * time.Millisecond
	// One request at a time on a connection, as when the idempotent
	// producer shared this config: the consumer and admin clients run as
	// they were tested.
	s.Net.MaxOpenRequests = 1
	// The dead-letter producer: parked events acknowledged by every
	// in-sync replica, an activity's on one partition.
	s.Producer.RequiredAcks = sarama.WaitForAll
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
// event is acknowledged. It is a franz-go client, not a sarama producer like
// the rest of the package: each acknowledgement reaches its caller through a
// callback instead of channel hops through sarama's goroutines, which costs
// less CPU per event. Concurrent joins share produce requests: while one
// request is in flight the next batch of each partition fills up. It
// implements activity.Recorder.
type Producer struct {
	cl      *kgo.Client
	timeout time.Duration
	// mu orders Record's hand-over against Close; closed is set once.
	mu     sync.RWMutex
	closed bool
	// Observe, when set, is told how long each event took and how it ended.
	Observe func(time.Duration, error)
}

// NewProducer connects an idempotent producer to the brokers; it fails when
// none of them answers.
func NewProducer(c Config) (*Producer, error) {
	p := &Producer{timeout: c.ProduceTimeout}
	if p.timeout <= 0 {
		p.timeout = DefaultProduceTimeout
	}
	cl, err := newClient(c.Brokers, c.Topic, p.timeout)
	if err != nil {
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	p.cl = cl
	return p, nil
}

// newClient connects a franz-go producer of records that matter, writing to
// topic by default, whose records fail once they waited timeout; it fails
// when none of the brokers answers within timeout. The participation
// events' producer and the token publisher are made by it.
func newClient(brokers []string, topic string, timeout time.Duration) (*kgo.Client, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ClientID("seckill"),
		kgo.MaxVersions(kversion.V2_8_0()),
		kgo.DialTimeout(dialTimeout),
		kgo.RequestTimeoutOverhead(ioTimeout),
		// A broker that comes back is found within about a second: kgo
		// waits 5 s between metadata refreshes, and up to 5 s between
		// retries, by default. kgo has no circuit breaker; it reconnects
		// by itself, so the producer is never made again, as sarama's
		// was after its breaker opened for 10 s.
		kgo.MetadataMinAge(200*time.Millisecond),
		kgo.RetryBackoffFn(retryBackoff),
		kgo.DefaultProduceTopic(topic),
		// Records that matter: acknowledged by every in-sync replica, and
		// written once however often they are retried, which is kgo's
		// default (no DisableIdempotentWrite). With idempotency kgo keeps
		// up to five produce requests in flight per broker by itself;
		// MaxProduceRequestsInflightPerBroker is refused with it.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// The broker's own bound on gathering the acknowledgements.
		kgo.ProduceRequestTimeout(5*time.Second),
		// A join waits for its event: no lingering to fill a batch, which
		// fills anyway while a request is in flight; events of a few
		// hundred bytes, not worth compressing.
		kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		// An activity's events on the partition sarama's hash partitioner
		// chose, where the consumer and the offsets look for them.
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(kgo.SaramaCompatHasher(fnv32a))),
		// An event whose join gave up is not kept and retried for ever: it
		// fails once it waited the produce timeout, with the events behind
		// it on its partition, and retries are bounded by this time, not
		// counted. Also when it was in a request the broker did not
		// answer (checked when the request ends: up to the broker's produce
		// timeout and the I/O overhead later): idempotency would keep it,
		// and every later event of its partition, for as long as the
		// broker is away. Such an event
		// may still be written, and is settled void. Failing it gives up
		// deduplication only for an event produced again, which the
		// service never does (a join tried again is a new event); kgo's
		// own retries are still written once.
		kgo.RecordDeliveryTimeout(timeout),
		kgo.AllowIdempotentProduceCancellation(),
	)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		return nil, err
	}
	return cl, nil
}

// retryBackoff is the pause before the fails-th retry of a request: 100 ms
// doubling up to 1 s, give or take a fifth so that instances do not retry in
// step.
func retryBackoff(fails int) time.Duration {
	d := min(100*time.Millisecond<<min(max(fails-1, 0), 4), time.Second)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// fnv32a is the 32-bit FNV-1a hash, sarama's default partitioner's.
func fnv32a(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

var errClosed = errors.New("kafka producer closed")

// Record publishes a participation event and waits until the broker has
// acknowledged it. It returns an error wrapping activity.ErrUnavailable when
// the broker fails or does not answer within the produce timeout, or the
// producer is closed; the event may still be written later, and is then
// settled void.
func (p *Producer) Record(ctx context.Context, part activity.Participation) error {
	start := time.Now()
	err := p.record(ctx, part)
	if p.Observe != nil {
		p.Observe(time.Since(start), err)
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
	rec := &kgo.Record{Key: strconv.AppendInt(nil, part.ActivityID, 10), Value: b}
	// Not the caller's ctx: kgo fails every event buffered for a partition
	// once the first one's ctx ends, so one join whose client went away
	// would fail the joins of the same activity. TryProduce: with the
	// buffer full (the broker away for a while) the join fails at once
	// instead of waiting its whole timeout. Under the read lock, so that
	// Close, which takes the write lock, flushes every event handed over
	// before it.
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return errClosed
	}
	p.cl.TryProduce(context.Background(), rec, func(_ *kgo.Record, err error) { done <- err })
	p.mu.RUnlock()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close writes the events already accepted, waiting at most the produce
// timeout, and closes the producer; events not written by then fail. Records
// after Close fail.
func (p *Producer) Close() error {
	p.mu.Lock()
	was := p.closed
	p.closed = true
	p.mu.Unlock()
	if was {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	_ = p.cl.Flush(ctx) // what is left fails with kgo.ErrClientClosed
	p.cl.Close()
	return nil
}
