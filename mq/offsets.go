package mq

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/IBM/sarama"
)

// Offsets tells whether the consumer group has written every acknowledged
// event of an activity into MySQL.
type Offsets struct {
	cfg    Config
	client sarama.Client
	admin  sarama.ClusterAdmin
}

// NewOffsets connects to the brokers.
func NewOffsets(c Config) (*Offsets, error) {
	if c.Group == "" {
		c.Group = "seckill"
	}
	client, err := sarama.NewClient(c.Brokers, c.saramaConfig())
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		_ = client.Close() // the admin's error is the one to tell
		return nil, fmt.Errorf("kafka admin: %w", err)
	}
	return &Offsets{cfg: c, client: client, admin: admin}, nil
}

// WaitCaughtUp waits until the group's committed offset on the activity's
// partition has reached the partition's end as it is now: every event
// acknowledged before the call is then in MySQL. It returns ctx's error when
// that does not happen in time.
func (o *Offsets) WaitCaughtUp(ctx context.Context, activityID int64) error {
	parts, err := o.client.Partitions(o.cfg.Topic)
	if err != nil {
		return fmt.Errorf("kafka partitions: %w", err)
	}
	p, err := sarama.NewHashPartitioner(o.cfg.Topic).Partition(
		&sarama.ProducerMessage{Key: sarama.StringEncoder(strconv.FormatInt(activityID, 10))}, int32(len(parts)))
	if err != nil {
		return err
	}
	end, err := o.client.GetOffset(o.cfg.Topic, p, sarama.OffsetNewest)
	if err != nil {
		return fmt.Errorf("kafka end offset: %w", err)
	}
	if end == 0 {
		return nil // no event was ever acknowledged on the partition
	}
	for {
		res, err := o.admin.ListConsumerGroupOffsets(o.cfg.Group, map[string][]int32{o.cfg.Topic: {p}})
		if err == nil {
			if b := res.GetBlock(o.cfg.Topic, p); b != nil && b.Err == sarama.ErrNoError && b.Offset >= end {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafka: consumer not caught up on partition %d (end %d): %w", p, end, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Close closes the connections.
func (o *Offsets) Close() error { return o.admin.Close() }
