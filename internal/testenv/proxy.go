package testenv

import (
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy forwards TCP connections to a target and can cut or slow them, so a
// test can take a dependency away from the code under test, or make it slow,
// without stopping a shared server.
type Proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	cuts   int // incremented by every Cut
	delay  time.Duration
	conns  map[net.Conn]struct{}
}

// NewProxy listens on a free loopback port and forwards to target until the
// test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() {
		closeLogged(t, "proxy listener", ln)
		p.Cut()
	})
	return p
}

// Addr is the address to connect to instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.cuts++
	for c := range p.conns {
		hangUp(c)
	}
	p.conns = map[net.Conn]struct{}{}
}

// Restore lets connections through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// Delay holds every chunk of data, in both directions, until d has passed
// since the proxy read it: a slow network, or with a long d a dependency
// that takes requests and does not answer. Connections stay open and the
// order of the data is kept. The delay applies at once to the data still
// held, so Delay(0) lets everything through.
func (p *Proxy) Delay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// hold waits until data read at read may pass, or the proxy was cut since
// cuts was read.
func (p *Proxy) hold(read time.Time, cuts int) {
	for {
		p.mu.Lock()
		d, cut := p.delay, p.cuts != cuts
		p.mu.Unlock()
		left := d - time.Since(read)
		if cut || left <= 0 {
			return
		}
		time.Sleep(min(left, 5*time.Millisecond))
	}
}

// pipe copies src to dst, each chunk held as Delay says, and closes dst
// when src ends.
func (p *Proxy) pipe(dst, src net.Conn) {
	type chunk struct {
		b    []byte
		read time.Time
	}
	p.mu.Lock()
	cuts := p.cuts
	p.mu.Unlock()
	q := make(chan chunk, 256)
	go func() {
		defer close(q)
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{append([]byte(nil), buf[:n]...), time.Now()}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		p.hold(c.read, cuts)
		if _, err := dst.Write(c.b); err != nil {
			break
		}
	}
	hangUp(dst)
	hangUp(src)
	for range q {
	}
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(c)
	}
}

func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		for _, c := range cs {
			hangUp(c)
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) forward(c net.Conn) {
	if !p.track(c) {
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		hangUp(c)
		return
	}
	if !p.track(up) {
		hangUp(c)
		return
	}
	go p.pipe(up, c)
	p.pipe(c, up)
}

// hangUp closes a connection of the proxy's: what the peer sees is the
// close, and a close that fails (already closed by the other side) leaves
// nothing to do.
func hangUp(c net.Conn) { _ = c.Close() }
