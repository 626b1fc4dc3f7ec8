package mq

import (
	"fmt"
	"net"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Embedded is an in-process Kafka-protocol broker for development and tests.
// It keeps its log in a data directory, so a restart keeps the events.
type Embedded struct {
	cluster *kfake.Cluster
}

// DefaultPartitions is how many partitions a topic is created with.
const DefaultPartitions = 6

// StartEmbedded starts a one-broker cluster listening on addr (host:port;
// port 0: any free port), keeping its data in dir (empty: in memory only).
// Topics created without a partition count get partitions. The broker
// tells its clients the address it listens on, so addr's host must be one
// they can reach.
func StartEmbedded(dir, addr string, partitions int) (*Embedded, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka: address %q: %w", addr, err)
	}
	listen := func(network, _ string) (net.Listener, error) {
		return net.Listen(network, net.JoinHostPort(host, port))
	}
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.ListenFn(listen), kfake.DefaultNumPartitions(partitions)}
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
