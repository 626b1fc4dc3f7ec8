// Package loggate keeps a failure that repeats on every request from
// flooding the log.
package loggate

import (
	"sync/atomic"
	"time"
)

// Gate opens at most once a second. The zero value is ready to use.
type Gate struct{ next atomic.Int64 }

// Open reports whether the caller may log now.
func (g *Gate) Open() bool {
	now := time.Now().UnixNano()
	n := g.next.Load()
	if now < n {
		return false
	}
	return g.next.CompareAndSwap(n, now+int64(time.Second))
}
