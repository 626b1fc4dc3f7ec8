package mq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"seckill/activity"
	"seckill/internal/loggate"
)

// Sink stores the participation events the consumer reads; storing one
// twice changes nothing. *activity.Service is one.
type Sink interface {
	StoreEvents(ctx context.Context, ps []activity.Participation) error
}

// Batching of the consumer: a batch is written when it holds MaxBatch
// events or its first event has waited FlushEvery.
const (
	MaxBatch   = 1000
	FlushEvery = 20 * time.Millisecond
)

// Consumer reads participation events in a consumer group and writes them
// into MySQL in batches. It marks an offset only after the batch holding it
// has been committed, and parks an event it cannot decode on the dead-letter
// topic instead of stalling its partition.
type Consumer struct {
	cfg   Config
	group sarama.ConsumerGroup
	dead  sarama.SyncProducer
	sink  Sink
	log   *slog.Logger
	gate  loggate.Gate

	// Lag, when set, is told each partition's lag after every batch.
	Lag func(partition int32, lag int64)
	// Written, when set, is told how many records each batch wrote.
	Written func(n int)
	// Assigned, when set, is told the partitions of the topic this
	// consumer reads, in order, at the start of every session (after each
	// rebalance: an instance joining, leaving or dying).
	Assigned func(partitions []int32)

	running sync.WaitGroup
	once    sync.Once
}

// NewConsumer joins the consumer group; Run consumes.
func NewConsumer(c Config, sink Sink, log *slog.Logger) (*Consumer, error) {
	if c.Group == "" {
		c.Group = "seckill"
	}
	sc := c.saramaConfig()
	group, err := sarama.NewConsumerGroup(c.Brokers, c.Group, sc)
	if err != nil {
		return nil, fmt.Errorf("kafka consumer group: %w", err)
	}
	dsc := c.saramaConfig()
	dsc.Net.MaxOpenRequests = 5
	dead, err := sarama.NewSyncProducer(c.Brokers, dsc)
	if err != nil {
		_ = group.Close() // the producer's error is the one to tell
		return nil, fmt.Errorf("kafka dead-letter producer: %w", err)
	}
	return &Consumer{cfg: c, group: group, dead: dead, sink: sink, log: log}, nil
}

// Start consumes in the background until ctx ends or Close is called.
func (c *Consumer) Start(ctx context.Context) {
	c.running.Add(2)
	go func() {
		defer c.running.Done()
		for err := range c.group.Errors() {
			if c.gate.Open() {
				c.log.Warn("kafka consumer", "err", err)
			}
		}
	}()
	go func() {
		defer c.running.Done()
		c.run(ctx)
	}()
}

// run consumes; Consume returns on every rebalance, so it is called in a
// loop.
func (c *Consumer) run(ctx context.Context) {
	for ctx.Err() == nil {
		err := c.group.Consume(ctx, []string{c.cfg.Topic}, handler{c})
		if errors.Is(err, sarama.ErrClosedConsumerGroup) {
			return
		}
		if err != nil {
			if c.gate.Open() {
				c.log.Warn("kafka consume; retrying", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// Close leaves the group, committing the marked offsets, and waits for Run.
func (c *Consumer) Close() error {
	var err error
	c.once.Do(func() {
		err = errors.Join(c.group.Close(), c.dead.Close())
	})
	c.running.Wait()
	return err
}

type handler struct{ c *Consumer }

// Setup says which partitions the new session reads.
func (h handler) Setup(sess sarama.ConsumerGroupSession) error {
	ps := slices.Sorted(slices.Values(sess.Claims()[h.c.cfg.Topic]))
	h.c.log.Info("kafka partitions assigned", "topic", h.c.cfg.Topic, "partitions", ps,
		"generation", sess.GenerationID())
	if h.c.Assigned != nil {
		h.c.Assigned(ps)
	}
	return nil
}

func (handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

// ConsumeClaim reads one partition in batches.
func (h handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	batch := make([]*sarama.ConsumerMessage, 0, MaxBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	flush := func() bool {
		if len(batch) == 0 {
			return true
		}
		if !h.c.write(sess.Context(), batch) {
			return false
		}
		last := batch[len(batch)-1]
		sess.MarkMessage(last, "")
		if h.c.Lag != nil {
			h.c.Lag(claim.Partition(), max(claim.HighWaterMarkOffset()-last.Offset-1, 0))
		}
		batch = batch[:0]
		return true
	}
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				flush()
				return nil
			}
			if len(batch) == 0 {
				timer.Reset(FlushEvery)
			}
			batch = append(batch, msg)
			if len(batch) >= MaxBatch && !flush() {
				return nil
			}
		case <-timer.C:
			if !flush() {
				return nil
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}

// write stores a batch, retrying until it is stored or the session ends. It
// reports whether the batch was stored (and may be marked).
func (c *Consumer) write(ctx context.Context, batch []*sarama.ConsumerMessage) bool {
	records := make([]activity.Participation, 0, len(batch))
	for _, m := range batch {
		p, err := DecodeEvent(m.Value)
		if err != nil {
			if !c.park(ctx, m, err) {
				return false
			}
			continue
		}
		records = append(records, p)
	}
	backoff := 100 * time.Millisecond
	for {
		err := c.sink.StoreEvents(ctx, records)
		if err == nil {
			if c.Written != nil {
				c.Written(len(records))
			}
			return true
		}
		if ctx.Err() != nil {
			return false // the session ended: the batch is delivered again
		}
		if c.gate.Open() {
			c.log.Warn("writing participation records failed; retrying", "records", len(records), "err", err)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// park sends an event that cannot be decoded to the dead-letter topic.
func (c *Consumer) park(ctx context.Context, m *sarama.ConsumerMessage, cause error) bool {
	c.log.Warn("parking an undecodable event", "topic", m.Topic, "partition", m.Partition,
		"offset", m.Offset, "err", cause)
	for {
		_, _, err := c.dead.SendMessage(&sarama.ProducerMessage{
			Topic: c.cfg.DeadLetterTopic(),
			Key:   sarama.ByteEncoder(m.Key),
			Value: sarama.ByteEncoder(m.Value),
			Headers: []sarama.RecordHeader{
				{Key: []byte("error"), Value: []byte(cause.Error())},
				{Key: []byte("source"), Value: []byte(m.Topic + "/" + strconv.Itoa(int(m.Partition)) + "/" + strconv.FormatInt(m.Offset, 10))},
			},
		})
		if err == nil {
			return true
		}
		if c.gate.Open() {
			c.log.Warn("dead-letter topic unreachable; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Second):
		}
	}
}
