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
		for range 20 {
			d := retryBackoff(fails)
			switch {
			case d > 1200*time.Millisecond:
				t.Fatalf("retryBackoff(%d) = %v, more than 1 s and a fifth", fails, d)
			case fails <= 1 && (d < 80*time.Millisecond || d > 120*time.Millisecond):
				t.Fatalf("retryBackoff(%d) = %v, want 100 ms give or take a fifth", fails, d)
			case fails >= 5 && d < 800*time.Millisecond:
				t.Fatalf("retryBackoff(%d) = %v, want 1 s give or take a fifth once it has doubled to it", fails, d)
			}
		}
	}
}
