package baselines

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
)

// seed002 is design (e), the chapter the service comes from, step by step
// as its Java code does it:
//
//  1. INCR the activity's used counter: slot n;
//  2. n > stock: DECR back, sold out;
//  3. SETNX activityId_n with a TTL (350 ms, as in the seed), a round trip
//     of its own; taken: fail (the seed returns an error and gives nothing
//     back);
//  4. INSERT the participation record (MySQL, autocommit);
//  5. DEL the slot lock — also when the INSERT failed, which is all the
//     seed's recover step does: the slot is not given back, the stock
//     stays stranded ("only guarantees no oversell");
//  6. send the stock snapshot to Kafka fire-and-forget (acks=1, not awaited).
//
// The seed also reads the activity from MySQL on every join; here its stock
// is cached in the process after the first read, which only helps it.
func (s *Server) seed002(ctx context.Context, id int64, user string) (int64, int64, error) {
	stock, err := s.stockOf(ctx, id)
	if err != nil {
		return 0, 0, err
	}
	ids := strconv.FormatInt(id, 10)
	tag := s.prefix + ":{" + ids + "}:"
	used := tag + "used"
	n, err := s.rdb.Incr(ctx, used).Result()
	if err != nil {
		return 0, 0, err
	}
	if n > stock {
		if err := s.rdb.Decr(ctx, used).Err(); err != nil {
			return 0, 0, err
		}
		return 0, 0, errSoldOut
	}
	lock := tag + "lock:" + ids + "_" + strconv.FormatInt(n, 10)
	ok, err := s.rdb.SetNX(ctx, lock, "1", 350*time.Millisecond).Result()
	if err != nil {
		return 0, 0, err
	}
	if !ok {
		return 0, 0, errBusy
	}
	res, err := s.db.ExecContext(ctx, insertParticipation, id, user, n)
	// The seed's recoverActivityCacheStockByRedis: delete the lock key,
	// whether the record was written or not.
	s.rdb.Del(context.WithoutCancel(ctx), lock)
	if err != nil {
		return 0, 0, duplicate(err)
	}
	rec, err := res.LastInsertId()
	if err != nil {
		return 0, 0, err
	}
	s.publish(ctx, partakeEvent{ActivityID: id, UserID: user, Slot: n, Surplus: stock - n})
	return rec, n, nil
}

// stockOf returns the stock of activity id, read from MySQL once.
func (s *Server) stockOf(ctx context.Context, id int64) (int64, error) {
	if v, ok := s.stocks.Load(id); ok {
		return v.(int64), nil
	}
	var total int64
	if err := s.db.QueryRowContext(ctx, "SELECT total FROM activity WHERE id = ?", id).Scan(&total); err != nil {
		return 0, err
	}
	s.stocks.Store(id, total)
	return total, nil
}

// partakeEvent is seed 002's MQ message: who joined, and the stock snapshot
// the consumer writes into MySQL.
type partakeEvent struct {
	ActivityID int64  `json:"activityId"`
	UserID     string `json:"userId"`
	Slot       int64  `json:"slot"`
	Surplus    int64  `json:"surplus"`
}

// kafka is seed 002's messaging: an async producer with acks=1 whose
// results nobody waits for, and a consumer that keeps the lowest snapshot of
// each activity and writes it to MySQL once a second (the seed's advice for
// heavy load, instead of one UPDATE per message).
type kafka struct {
	topic    string
	producer sarama.AsyncProducer
	consumer sarama.Consumer
	dropped  atomic.Int64

	mu        sync.Mutex
	snapshots map[int64]int64

	stop chan struct{}
	done sync.WaitGroup
}

func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = "seckill-baseline-seed002"
	c.Version = sarama.V2_8_0_0
	c.Net.DialTimeout = 2 * time.Second
	c.Producer.RequiredAcks = sarama.WaitForLocal
	c.Producer.Return.Successes = false
	c.Producer.Return.Errors = true
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	return c
}

func startKafka(brokers []string, topic string, db *sql.DB) (*kafka, error) {
	cfg := saramaConfig()
	admin, err := sarama.NewClusterAdmin(brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("kafka at %v: %w", brokers, err)
	}
	err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 6, ReplicationFactor: 1}, false)
	_ = admin.Close() // used for the topic only; the create's error is the one to tell
	if err != nil && !isTopicExists(err) {
		return nil, fmt.Errorf("kafka: create topic %s: %w", topic, err)
	}
	k := &kafka{topic: topic, snapshots: map[int64]int64{}, stop: make(chan struct{})}
	if k.producer, err = sarama.NewAsyncProducer(brokers, cfg); err != nil {
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	k.done.Add(1)
	go func() {
		defer k.done.Done()
		for range k.producer.Errors() {
			k.dropped.Add(1)
		}
	}()
	if k.consumer, err = sarama.NewConsumer(brokers, cfg); err != nil {
		_ = k.producer.Close() // the consumer's error is the one to tell
		return nil, fmt.Errorf("kafka consumer: %w", err)
	}
	parts, err := k.consumer.Partitions(topic)
	if err != nil {
		k.close(context.Background(), db)
		return nil, fmt.Errorf("kafka partitions: %w", err)
	}
	for _, p := range parts {
		pc, err := k.consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			k.close(context.Background(), db)
			return nil, fmt.Errorf("kafka consume partition %d: %w", p, err)
		}
		k.done.Add(1)
		go func() {
			defer k.done.Done()
			for m := range pc.Messages() {
				var e partakeEvent
				if json.Unmarshal(m.Value, &e) != nil {
					continue
				}
				k.mu.Lock()
				if v, ok := k.snapshots[e.ActivityID]; !ok || e.Surplus < v {
					k.snapshots[e.ActivityID] = e.Surplus
				}
				k.mu.Unlock()
			}
		}()
		k.done.Add(1)
		go func() {
			defer k.done.Done()
			<-k.stop
			pc.AsyncClose()
		}()
	}
	k.done.Add(1)
	go func() {
		defer k.done.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-k.stop:
				return
			case <-t.C:
				k.flush(context.Background(), db)
			}
		}
	}()
	return k, nil
}

func isTopicExists(err error) bool {
	var te *sarama.TopicError
	if errors.As(err, &te) {
		return te.Err == sarama.ErrTopicAlreadyExists
	}
	return errors.Is(err, sarama.ErrTopicAlreadyExists)
}

// flush writes the lowest snapshot seen of each activity into MySQL.
func (k *kafka) flush(ctx context.Context, db *sql.DB) {
	k.mu.Lock()
	snaps := k.snapshots
	k.snapshots = map[int64]int64{}
	k.mu.Unlock()
	for id, v := range snaps {
		_, _ = db.ExecContext(ctx, "UPDATE activity SET stock = ? WHERE id = ? AND stock > ?", v, id, v)
	}
}

func (s *Server) publish(ctx context.Context, e partakeEvent) {
	b, _ := json.Marshal(e)
	select {
	case s.kafka.producer.Input() <- &sarama.ProducerMessage{Topic: s.kafka.topic, Value: sarama.ByteEncoder(b)}:
	case <-ctx.Done():
		s.kafka.dropped.Add(1)
	}
}

func (k *kafka) close(ctx context.Context, db *sql.DB) {
	if k.producer != nil {
		k.producer.AsyncClose()
	}
	close(k.stop)
	k.done.Wait()
	if k.consumer != nil {
		_ = k.consumer.Close() // its partition consumers have stopped; the flush below is what counts
	}
	k.flush(ctx, db)
}
