package mq

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Embedded is an in-process Kafka-protocol broker for development and tests.
// It keeps its log in a data directory, so a restart keeps the events.
type Embedded struct {
	cluster *kfake.Cluster
}

// StartEmbedded starts a one-broker cluster on 127.0.0.1, on port (0: any
// free port), keeping its data in dir (empty: in memory only).
func StartEmbedded(dir string, port int) (*Embedded, error) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port), kfake.DefaultNumPartitions(6)}
	if dir != "" {
		opts = append(opts, kfake.DataDir(dir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka: %w", err)
	}
	return &Embedded{cluster: c}, nil
}

// Brokers returns the addresses of the broker.
func (e *Embedded) Brokers() []string { return e.cluster.ListenAddrs() }

// Close stops the broker, flushing its data directory.
func (e *Embedded) Close() { e.cluster.Close() }
