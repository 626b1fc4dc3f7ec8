package main

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"seckill/mq"
)

// TestLagFollowsTheAssignment: the lag of a partition that moved to another
// instance at a rebalance is no longer reported here, so that a sum over
// instances counts each partition once.
func TestLagFollowsTheAssignment(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	c := &mq.Consumer{}
	m.watchConsumer(c)
	c.Assigned([]int32{0, 1, 2})
	c.Lag(0, 5)
	c.Lag(2, 7)
	c.Assigned([]int32{1, 2}) // partition 0 went to another instance
	c.Lag(1, 3)
	want := `
# HELP seckill_kafka_consumer_lag Events on the partition not yet written into MySQL, as of the last batch.
# TYPE seckill_kafka_consumer_lag gauge
seckill_kafka_consumer_lag{partition="1"} 3
seckill_kafka_consumer_lag{partition="2"} 7
# HELP seckill_kafka_partitions_assigned Partitions of the event topic this instance consumes, as of the last rebalance.
# TYPE seckill_kafka_partitions_assigned gauge
seckill_kafka_partitions_assigned 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"seckill_kafka_consumer_lag", "seckill_kafka_partitions_assigned"); err != nil {
		t.Error(err)
	}
}
