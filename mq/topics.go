package mq

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/IBM/sarama"
)

// Durability defaults: a topic is created with DefaultReplicationFactor
// replicas, or one per live broker on a smaller cluster, and with
// min.insync.replicas DefaultMinInsyncReplicas, or the replication factor
// when that is smaller.
const (
	DefaultReplicationFactor = 3
	DefaultMinInsyncReplicas = 2
)

// minISRConfig is the topic setting that makes acks=all mean "on this many
// replicas".
const minISRConfig = "min.insync.replicas"

// ErrTopicSettings marks a replication factor or min.insync.replicas that
// the cluster cannot give a new topic.
var ErrTopicSettings = errors.New("kafka topic settings")

// TopicState is what EnsureTopics made or found of one topic.
type TopicState struct {
	Name    string
	Created bool // created now; false: it existed
	Brokers int  // live brokers in the cluster
	// ReplicationFactor is the topic's: the fewest replicas of any of its
	// partitions.
	ReplicationFactor int
	// MinInsyncReplicas is the topic's effective min.insync.replicas (its
	// own or the broker default); 0 when it could not be read.
	MinInsyncReplicas int
	// WantReplicationFactor and WantMinInsyncReplicas are what the Config
	// asks for on this cluster.
	WantReplicationFactor, WantMinInsyncReplicas int
	// Partitions is the topic's partition count (0 when it could not be
	// read); WantPartitions what the caller asked for.
	Partitions, WantPartitions int
	// Problems says, one sentence each, how an existing topic falls short
	// of what is wanted. Existing topics are never altered.
	Problems []string
}

// topics are the topics the service writes.
func (c Config) topics() []string {
	ts := []string{c.Topic, c.DeadLetterTopic()}
	if c.TokensTopic != "" {
		ts = append(ts, c.TokensTopic)
	}
	return ts
}

// durability is the replication factor and min.insync.replicas the Config
// asks for on a cluster of brokers live brokers.
func (c Config) durability(brokers int) (rf, minISR int) {
	rf = c.ReplicationFactor
	if rf <= 0 {
		rf = min(DefaultReplicationFactor, brokers)
	}
	minISR = c.MinInsyncReplicas
	if minISR <= 0 {
		minISR = min(DefaultMinInsyncReplicas, rf)
	}
	return rf, minISR
}

// EnsureTopics creates the event topic, its dead-letter topic and the
// tokens topic (when the Config names one) when they are missing, with the replication factor and min.insync.replicas
// of the Config (by default min(3, live brokers) and min(2, replication
// factor)). A new topic the cluster cannot give them to fails with an error
// wrapping ErrTopicSettings. Existing topics are left as they are; their
// TopicState lists how they fall short, for the caller to warn about.
func EnsureTopics(c Config, partitions int32) ([]TopicState, error) {
	admin, err := sarama.NewClusterAdmin(c.Brokers, c.saramaConfig())
	if err != nil {
		return nil, fmt.Errorf("kafka at %v: %w", c.Brokers, err)
	}
	defer func() { _ = admin.Close() }() // used for these calls only
	brokers, _, err := admin.DescribeCluster()
	if err != nil {
		return nil, fmt.Errorf("kafka: describe cluster: %w", err)
	}
	if len(brokers) == 0 {
		return nil, errors.New("kafka: the cluster has no live broker")
	}
	rf, minISR := c.durability(len(brokers))
	existing, err := admin.ListTopics()
	if err != nil {
		return nil, fmt.Errorf("kafka: list topics: %w", err)
	}

	var states []TopicState
	for _, t := range c.topics() {
		st := TopicState{Name: t, Brokers: len(brokers), WantReplicationFactor: rf, WantMinInsyncReplicas: minISR,
			WantPartitions: int(partitions)}
		if _, ok := existing[t]; !ok {
			if err := createTopic(admin, t, partitions, rf, minISR, len(brokers)); err == nil {
				st.Created, st.ReplicationFactor, st.MinInsyncReplicas = true, rf, minISR
				st.Partitions = int(partitions)
				states = append(states, st)
				continue
			} else if !errors.Is(err, sarama.ErrTopicAlreadyExists) {
				return nil, err
			}
			// Another instance created it meanwhile: check it as found.
		}
		inspectTopic(admin, &st)
		states = append(states, st)
	}
	return states, nil
}

func createTopic(admin sarama.ClusterAdmin, t string, partitions int32, rf, minISR, brokers int) error {
	if rf > brokers {
		return fmt.Errorf("%w: topic %s: replication factor %d asked, but the cluster has %d live broker(s)",
			ErrTopicSettings, t, rf, brokers)
	}
	if minISR > rf {
		return fmt.Errorf("%w: topic %s: min.insync.replicas %d is more than the replication factor %d, so no event could ever be acknowledged",
			ErrTopicSettings, t, minISR, rf)
	}
	v := strconv.Itoa(minISR)
	err := admin.CreateTopic(t, &sarama.TopicDetail{
		NumPartitions:     partitions,
		ReplicationFactor: int16(rf),
		ConfigEntries:     map[string]*string{minISRConfig: &v},
	}, false)
	if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fmt.Errorf("kafka: create topic %s (replication factor %d, min.insync.replicas %d): %w", t, rf, minISR, err)
	}
	return err
}

// inspectTopic reads an existing topic's partition count, replication
// factor and effective min.insync.replicas into st and lists how they fall short of st's wants.
func inspectTopic(admin sarama.ClusterAdmin, st *TopicState) {
	md, err := admin.DescribeTopics([]string{st.Name})
	switch {
	case err != nil:
		st.Problems = append(st.Problems, fmt.Sprintf("its replication factor could not be read (%v)", err))
	case len(md) != 1 || !errors.Is(md[0].Err, sarama.ErrNoError) || len(md[0].Partitions) == 0:
		e := "no partitions"
		if len(md) == 1 && !errors.Is(md[0].Err, sarama.ErrNoError) {
			e = md[0].Err.Error()
		}
		st.Problems = append(st.Problems, fmt.Sprintf("its replication factor could not be read (%s)", e))
	default:
		st.Partitions = len(md[0].Partitions)
		if st.Partitions < st.WantPartitions {
			st.Problems = append(st.Problems, fmt.Sprintf(
				"%d partitions, fewer than the %d set: at most %d instances share the consuming "+
					"(add partitions between sales with kafka-topics.sh --alter --topic %s --partitions %d)",
				st.Partitions, st.WantPartitions, st.Partitions, st.Name, st.WantPartitions))
		}
		st.ReplicationFactor = len(md[0].Partitions[0].Replicas)
		for _, p := range md[0].Partitions[1:] {
			st.ReplicationFactor = min(st.ReplicationFactor, len(p.Replicas))
		}
		if st.ReplicationFactor < st.WantReplicationFactor {
			st.Problems = append(st.Problems, fmt.Sprintf(
				"replication factor %d, less than the %d wanted: an acknowledged event is kept on %d broker(s) only "+
					"(raise it with kafka-reassign-partitions.sh)",
				st.ReplicationFactor, st.WantReplicationFactor, st.ReplicationFactor))
		}
	}

	res, err := admin.DescribeConfigs([]*sarama.ConfigResource{
		{Type: sarama.TopicResource, Name: st.Name, ConfigNames: []string{minISRConfig}},
	}, sarama.DescribeConfigsOptions{})
	if err == nil && (len(res) != 1 || res[0].ErrorCode != sarama.ErrNoError) {
		err = errors.New("no answer for the topic")
		if len(res) == 1 {
			err = res[0].ErrorCode
		}
	}
	if err == nil {
		for _, e := range res[0].Configs {
			if e.Name == minISRConfig {
				st.MinInsyncReplicas, _ = strconv.Atoi(e.Value)
			}
		}
		if st.MinInsyncReplicas <= 0 {
			err = errors.New("not reported")
		}
	}
	fix := func(n int) string {
		return fmt.Sprintf("kafka-configs.sh --alter --entity-type topics --entity-name %s --add-config %s=%d",
			st.Name, minISRConfig, n)
	}
	switch {
	case err != nil:
		st.Problems = append(st.Problems, fmt.Sprintf("its %s could not be read (%v)", minISRConfig, err))
	case st.MinInsyncReplicas < st.WantMinInsyncReplicas:
		how := "raise it with "
		if st.ReplicationFactor < st.WantMinInsyncReplicas {
			how = "once the replication factor is raised, raise it with "
		}
		st.Problems = append(st.Problems, fmt.Sprintf(
			"%s %d, less than the %d wanted: acks=all is satisfied by %d replica(s) (%s%s)",
			minISRConfig, st.MinInsyncReplicas, st.WantMinInsyncReplicas, st.MinInsyncReplicas, how, fix(st.WantMinInsyncReplicas)))
	case st.ReplicationFactor > 0 && st.MinInsyncReplicas > st.ReplicationFactor:
		st.Problems = append(st.Problems, fmt.Sprintf(
			"%s %d, more than its replication factor %d: no event can be acknowledged and every join will answer 503 (lower it with %s)",
			minISRConfig, st.MinInsyncReplicas, st.ReplicationFactor, fix(min(st.WantMinInsyncReplicas, st.ReplicationFactor))))
	}
}
