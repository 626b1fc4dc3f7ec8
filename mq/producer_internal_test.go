package mq

import (
	"testing"
	"time"
)

// The producer retries a request against a broker that went away 100 ms
// after the first failure, doubling to at most 1 s, a fifth either way:
// never the 5 s of kgo's default, so a broker that is back is found within
// about a second.
func TestRetryBackoff(t *testing.T) {
	for fails := 0; fails <= 50; fails++ {
		want := min(100*time.Millisecond<<min(max(fails-1, 0), 4), time.Second)
		for range 20 {
			d := retryBackoff(fails)
			if d < want*8/10 || d > want*12/10 {
				t.Fatalf("retryBackoff(%d) = %v, want %v ± 20 %%", fails, d, want)
			}
		}
	}
}
