package stock

import (
	"reflect"
	"sync"
	"testing"

	"seckill/activity"
)

// The key cache answers each activity its own keys, also when activities
// take turns in one entry, from many goroutines at once.
func TestKeyCacheCollisions(t *testing.T) {
	s := &Store{prefix: "kc"}
	ids := []int64{1, 1 + int64(len(s.keys)), 1 + 2*int64(len(s.keys)), 2, -1}
	for _, id := range ids {
		s.layoutFor(&activity.Activity{ID: id, Shards: 1 + int(id%3+3)%3})
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				id := ids[(g+i)%len(ids)]
				if (g+i)%7 == 0 {
					s.layoutFor(&activity.Activity{ID: id, Shards: 1 + int(id%3+3)%3})
				}
				l := s.keys[uint64(id)%uint64(len(s.keys))].Load()
				if l == nil || l.id != id {
					continue // another activity's turn
				}
				want := s.ShardKeys(id, 1+int(id%3+3)%3)
				for j, sh := range l.shards {
					if !reflect.DeepEqual(sh.k, want[j]) {
						t.Errorf("layout of %d, shard %d = %+v, want %+v", id, j, sh.k, want[j])
						return
					}
					claim := []string{want[j].Meta, want[j].Used, want[j].Users, want[j].Slots, want[j].Leases, want[j].LockPrefix, want[j].Idem, want[j].Held}
					if !reflect.DeepEqual(sh.claim, claim) {
						t.Errorf("layout of %d, shard %d: claim keys %v, want %v", id, j, sh.claim, claim)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}
