package testenv

import (
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Kafka starts a Kafka-protocol broker of the test's own (kfake, as the
// embedded development broker, with six partitions a topic) behind a Proxy,
// and returns the proxy. The broker announces the proxy's address in its
// metadata, so every connection of a client, the bootstrap one and those to
// the partition leaders, passes through the proxy: Cut and Delay act on
// Kafka as a whole. The broker stops when the test ends.
func Kafka(t testing.TB) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := NewProxy(t, ln.Addr().String())
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(6),
		kfake.ListenFn(func(string, string) (net.Listener, error) {
			return announced{ln, p.ln.Addr()}, nil
		}))
	if err != nil {
		closeLogged(t, "listener", ln)
		t.Fatalf("testenv: kafka: %v", err)
	}
	t.Cleanup(c.Close)
	return p
}

// announced is a listener that names another address as its own: the
// broker announces it to its clients.
type announced struct {
	net.Listener
	addr net.Addr
}

func (a announced) Addr() net.Addr { return a.addr }
