package mq_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"seckill/mq"
)

// startCluster starts an in-memory kfake cluster of n brokers.
func startCluster(t *testing.T, n int) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(n), kfake.DefaultNumPartitions(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func newAdmin(t *testing.T, brokers []string) sarama.ClusterAdmin {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = mq.ProtocolVersion()
	admin, err := sarama.NewClusterAdmin(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	return admin
}

// describe reads a topic's replication factor (the fewest replicas of any
// partition) and min.insync.replicas through the admin API, as an operator
// would.
func describe(t *testing.T, admin sarama.ClusterAdmin, topic string) (rf, minISR int) {
	t.Helper()
	md, err := admin.DescribeTopics([]string{topic})
	if err != nil {
		t.Fatal(err)
	}
	if len(md) != 1 || !errors.Is(md[0].Err, sarama.ErrNoError) || len(md[0].Partitions) == 0 {
		t.Fatalf("describe %s: %+v", topic, md)
	}
	rf = len(md[0].Partitions[0].Replicas)
	for _, p := range md[0].Partitions {
		rf = min(rf, len(p.Replicas))
	}
	res, err := admin.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: topic,
		ConfigNames: []string{"min.insync.replicas"}}}, sarama.DescribeConfigsOptions{})
	if err != nil || len(res) != 1 || res[0].ErrorCode != sarama.ErrNoError {
		t.Fatalf("describe the configuration of %s: %v %+v", topic, err, res)
	}
	for _, e := range res[0].Configs {
		if e.Name == "min.insync.replicas" {
			minISR, _ = strconv.Atoi(e.Value)
		}
	}
	return rf, minISR
}

func topicConfig(t *testing.T, brokers []string) mq.Config {
	t.Helper()
	return mq.Config{Brokers: brokers, Topic: "durable-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))}
}

// checkCreated checks that both topics were created now with rf and minISR,
// as EnsureTopics reports and as the admin API reads them back.
func checkCreated(t *testing.T, cfg mq.Config, states []mq.TopicState, rf, minISR int) {
	t.Helper()
	if len(states) != 2 || states[0].Name != cfg.Topic || states[1].Name != cfg.DeadLetterTopic() {
		t.Fatalf("states %+v, want the topic and its dead-letter topic", states)
	}
	admin := newAdmin(t, cfg.Brokers)
	for _, st := range states {
		if !st.Created || st.ReplicationFactor != rf || st.MinInsyncReplicas != minISR || len(st.Problems) > 0 {
			t.Errorf("%s: %+v, want created with replication factor %d, min.insync.replicas %d", st.Name, st, rf, minISR)
		}
		if gotRF, gotISR := describe(t, admin, st.Name); gotRF != rf || gotISR != minISR {
			t.Errorf("%s on the cluster: replication factor %d, min.insync.replicas %d; want %d, %d",
				st.Name, gotRF, gotISR, rf, minISR)
		}
	}
}

func TestTopicsSingleBroker(t *testing.T) {
	e := startBroker(t)
	cfg := topicConfig(t, e.Brokers())
	states, err := mq.EnsureTopics(cfg, 3)
	if err != nil {
		t.Fatalf("one broker, defaults: %v", err)
	}
	checkCreated(t, cfg, states, 1, 1)
	for _, st := range states {
		if st.Partitions != 3 {
			t.Errorf("%s created with %d partitions, want 3", st.Name, st.Partitions)
		}
	}
}

// TestTopicsFewerPartitions: an existing topic with fewer partitions than
// asked for is left as it is, and said so.
func TestTopicsFewerPartitions(t *testing.T) {
	e := startBroker(t)
	cfg := topicConfig(t, e.Brokers())
	if _, err := mq.EnsureTopics(cfg, 2); err != nil {
		t.Fatal(err)
	}
	states, err := mq.EnsureTopics(cfg, 6)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range states {
		if st.Created || st.Partitions != 2 || st.WantPartitions != 6 || len(st.Problems) != 1 ||
			!strings.Contains(st.Problems[0], "2 partitions, fewer than the 6 set") ||
			!strings.Contains(st.Problems[0], "--partitions 6") {
			t.Errorf("%s: %+v; want found with 2 partitions and one problem saying 6 are set", st.Name, st)
		}
	}
}

func TestTopicsThreeBrokers(t *testing.T) {
	brokers := startCluster(t, 3)
	cfg := topicConfig(t, brokers)
	states, err := mq.EnsureTopics(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	checkCreated(t, cfg, states, 3, 2)

	// Found again, as a restart finds them: nothing to say.
	again, err := mq.EnsureTopics(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range again {
		if st.Created || st.ReplicationFactor != 3 || st.MinInsyncReplicas != 2 || len(st.Problems) > 0 {
			t.Errorf("second run: %+v, want found with 3 and 2 and no problems", st)
		}
	}

	// Events go through with acks=all on the replicated topic.
	p := newProducer(t, cfg)
	if err := p.Record(context.Background(), makeParticipations(t, 1, 1)[0]); err != nil {
		t.Fatalf("record on the replicated topic: %v", err)
	}
}

func TestTopicsTwoBrokers(t *testing.T) {
	cfg := topicConfig(t, startCluster(t, 2))
	states, err := mq.EnsureTopics(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	checkCreated(t, cfg, states, 2, 2)
}

func TestTopicsExplicitSettings(t *testing.T) {
	brokers := startCluster(t, 3)
	t.Run("ReplicationFactor2", func(t *testing.T) {
		cfg := topicConfig(t, brokers)
		cfg.ReplicationFactor = 2
		states, err := mq.EnsureTopics(cfg, 3)
		if err != nil {
			t.Fatal(err)
		}
		checkCreated(t, cfg, states, 2, 2)
	})
	t.Run("MinInsyncReplicas1", func(t *testing.T) {
		cfg := topicConfig(t, brokers)
		cfg.MinInsyncReplicas = 1
		states, err := mq.EnsureTopics(cfg, 3)
		if err != nil {
			t.Fatal(err)
		}
		checkCreated(t, cfg, states, 3, 1)
	})
	t.Run("MinInsyncReplicas3", func(t *testing.T) {
		cfg := topicConfig(t, brokers)
		cfg.MinInsyncReplicas = 3
		states, err := mq.EnsureTopics(cfg, 3)
		if err != nil {
			t.Fatal(err)
		}
		checkCreated(t, cfg, states, 3, 3)
	})
}

// Settings a new topic cannot have fail the start, naming them, and create
// nothing.
func TestTopicsClusterTooSmall(t *testing.T) {
	brokers := startBroker(t).Brokers()
	for _, tt := range []struct {
		name       string
		rf, minISR int
		want       string
	}{
		{"ReplicationFactor", 3, 0, "replication factor 3 asked, but the cluster has 1 live broker"},
		{"MinInsyncReplicas", 0, 2, "min.insync.replicas 2 is more than the replication factor 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := topicConfig(t, brokers)
			cfg.ReplicationFactor, cfg.MinInsyncReplicas = tt.rf, tt.minISR
			_, err := mq.EnsureTopics(cfg, 3)
			if !errors.Is(err, mq.ErrTopicSettings) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want ErrTopicSettings saying %q", err, tt.want)
			}
			topics, err := newAdmin(t, brokers).ListTopics()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := topics[cfg.Topic]; ok {
				t.Errorf("topic %s was created", cfg.Topic)
			}
		})
	}
}

// Topics made before, the participations with one replica and the dead
// letters with two, are reported and left as they are.
func TestTopicsExistingBelowWanted(t *testing.T) {
	brokers := startCluster(t, 3)
	cfg := topicConfig(t, brokers)
	admin := newAdmin(t, brokers)
	if err := admin.CreateTopic(cfg.Topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic(cfg.DeadLetterTopic(), &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 2}, false); err != nil {
		t.Fatal(err)
	}
	states, err := mq.EnsureTopics(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 2 {
		t.Fatalf("states %+v", states)
	}
	old, dead := states[0], states[1]
	if old.Created || old.ReplicationFactor != 1 || old.MinInsyncReplicas != 1 || old.WantReplicationFactor != 3 || old.WantMinInsyncReplicas != 2 {
		t.Errorf("existing topic: %+v", old)
	}
	problems := strings.Join(old.Problems, "\n")
	for _, w := range []string{"replication factor 1, less than the 3 wanted", "min.insync.replicas 1, less than the 2 wanted",
		"kafka-reassign-partitions.sh", "once the replication factor is raised, raise it with kafka-configs.sh",
		"--add-config min.insync.replicas=2"} {
		if !strings.Contains(problems, w) {
			t.Errorf("problems do not say %q:\n%s", w, problems)
		}
	}
	if dead.Created || dead.ReplicationFactor != 2 || dead.MinInsyncReplicas != 1 {
		t.Errorf("existing dead-letter topic: %+v", dead)
	}
	problems = strings.Join(dead.Problems, "\n")
	if !strings.Contains(problems, "replication factor 2, less than the 3 wanted") ||
		!strings.Contains(problems, "(raise it with kafka-configs.sh") || strings.Contains(problems, "once the replication factor") {
		t.Errorf("dead-letter problems, its replication factor enough for 2 in sync:\n%s", problems)
	}
	if rf, minISR := describe(t, admin, cfg.Topic); rf != 1 || minISR != 1 {
		t.Errorf("the existing topic was altered: replication factor %d, min.insync.replicas %d", rf, minISR)
	}
}

// A topic made before whose min.insync.replicas is above its replication
// factor can acknowledge nothing: reported, with the fix.
func TestTopicsExistingUnsatisfiable(t *testing.T) {
	e := startBroker(t)
	cfg := topicConfig(t, e.Brokers())
	two := "2"
	admin := newAdmin(t, cfg.Brokers)
	if err := admin.CreateTopic(cfg.Topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"min.insync.replicas": &two}}, false); err != nil {
		t.Fatal(err)
	}
	states, err := mq.EnsureTopics(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	old := states[0]
	problems := strings.Join(old.Problems, "\n")
	if old.Created || old.ReplicationFactor != 1 || old.MinInsyncReplicas != 2 ||
		!strings.Contains(problems, "min.insync.replicas 2, more than its replication factor 1: no event can be acknowledged") ||
		!strings.Contains(problems, "--add-config min.insync.replicas=1") {
		t.Fatalf("existing topic %+v, want min.insync.replicas 2 over replication factor 1 reported", old)
	}
}
