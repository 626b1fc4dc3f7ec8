package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"seckill/mq"
)

// The embedded broker is a cluster of one: its topics get one replica and
// min.insync.replicas 1, without an error or a warning about durability.
func TestAppTopicsEmbedded(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	app, logs := startAppLogged(t, cfg)
	if code, msg := readyz(t, app); code != http.StatusOK {
		t.Fatalf("readyz %d %q", code, msg)
	}
	for _, topic := range []string{cfg.KafkaTopic, cfg.KafkaTopic + ".dead", cfg.TokensTopic} {
		want := `msg="created kafka topic" topic=` + topic + ` replicationFactor=1 minInsyncReplicas=1 partitions=6 liveBrokers=1`
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs do not say %s:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), "one live broker") || strings.Contains(logs.String(), "does not alter") {
		t.Errorf("durability warning on the embedded broker:\n%s", logs.String())
	}
}

// On a cluster of three brokers a missing topic is created with three
// replicas and min.insync.replicas 2; one made before with a single replica
// is warned about and left alone.
func TestAppTopicsThreeBrokers(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg := testConfig(t)
	cfg.KafkaBrokers = c.ListenAddrs()
	cfg.KafkaTopic = "seckill.durable"
	cfg.TokensTopic = "seckill.durable.tokens"

	scfg := sarama.NewConfig()
	scfg.Version = mq.ProtocolVersion()
	admin, err := sarama.NewClusterAdmin(cfg.KafkaBrokers, scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.CreateTopic("seckill.durable.dead", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}

	app, logs := startAppLogged(t, cfg)
	if code, msg := readyz(t, app); code != http.StatusOK {
		t.Fatalf("readyz %d %q", code, msg)
	}
	got := logs.String()
	for _, w := range []string{
		`msg="created kafka topic" topic=seckill.durable replicationFactor=3 minInsyncReplicas=2 partitions=6 liveBrokers=3`,
		`msg="created kafka topic" topic=seckill.durable.tokens replicationFactor=3 minInsyncReplicas=2 partitions=6 liveBrokers=3`,
		`kafka topic seckill.durable.dead: replication factor 1, less than the 3 wanted`,
		`kafka topic seckill.durable.dead: min.insync.replicas 1, less than the 2 wanted`,
		`seckill does not alter existing topics`,
	} {
		if !strings.Contains(got, w) {
			t.Errorf("logs do not say %s:\n%s", w, got)
		}
	}
	if strings.Contains(got, `topic=seckill.durable.dead replicationFactor`) {
		t.Errorf("the existing dead-letter topic was created again:\n%s", got)
	}
}
