package stock

import (
	"reflect"
	"sync"
	"testing"
)

// The key cache answers each activity its own keys, also when activities
// take turns in one entry, from many goroutines at once.
func TestKeyCacheCollisions(t *testing.T) {
	s := &Store{prefix: "kc"}
	ids := []int64{1, 1 + int64(len(s.keys)), 1 + 2*int64(len(s.keys)), 2, -1}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				id := ids[(g+i)%len(ids)]
				c := s.cached(id)
				want := s.KeysOf(id)
				if c.id != id || !reflect.DeepEqual(c.k, want) {
					t.Errorf("cached(%d) = keys of %d: %+v", id, c.id, c.k)
					return
				}
				claim := []string{want.Meta, want.Used, want.Users, want.Slots, want.Leases, want.LockPrefix, want.Idem, want.Held}
				if !reflect.DeepEqual(c.claim, claim) {
					t.Errorf("cached(%d).claim = %v, want %v", id, c.claim, claim)
					return
				}
			}
		})
	}
	wg.Wait()
}
