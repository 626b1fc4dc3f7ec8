package activity

import (
	"context"
	"errors"
	"testing"
	"time"
)

// countingSlots is a slot store that is always sold out and counts claims.
type countingSlots struct {
	SlotStore
	claims int
}

func (c *countingSlots) Claim(context.Context, *Claim) error {
	c.claims++
	return ErrSoldOut
}

func TestSoldOutIsAnsweredFromMemory(t *testing.T) {
	slots := &countingSlots{}
	signer, _ := NewSigner(make([]byte, MinSecretLen))
	svc := NewService(nil, slots, nil, signer, nil)
	now := time.Unix(1000, 0)
	svc.now = func() time.Time { return now }
	join := func() {
		t.Helper()
		if _, err := svc.Join(context.Background(), 1, "u", ""); !errors.Is(err, ErrSoldOut) {
			t.Fatalf("got %v, want ErrSoldOut", err)
		}
	}
	join()
	for range 100 {
		join()
	}
	if slots.claims != 1 {
		t.Fatalf("%d claims reached the slot store, want 1: the sold-out answer was not kept", slots.claims)
	}
	now = now.Add(soldOutFor)
	join()
	if slots.claims != 2 {
		t.Fatalf("%d claims after the sold-out answer expired, want 2: a slot given back must be offered again", slots.claims)
	}
	if _, err := svc.Join(context.Background(), 2, "u", ""); !errors.Is(err, ErrSoldOut) || slots.claims != 3 {
		t.Fatalf("another activity: %v after %d claims, want its own claim", err, slots.claims)
	}
}

// TestNoStateCacheIsBounded: the IDs known missing are kept up to
// maxNoStates; past that the cache starts afresh, and every entry lasts a
// second.
func TestNoStateCacheIsBounded(t *testing.T) {
	var c noStateCache
	now := time.Unix(1000, 0)
	for id := range int64(maxNoStates) {
		c.put(id+1, ErrNotFound, now)
	}
	c.put(maxNoStates+1, ErrNotFound, now)
	if ok, _ := c.get(1, now); !ok {
		t.Fatalf("the first ID forgotten at %d entries", maxNoStates+1)
	}
	c.put(maxNoStates+2, ErrNotFound, now)
	if ok, _ := c.get(1, now); ok {
		t.Fatalf("the first ID still kept past %d entries", maxNoStates+1)
	}
	if ok, err := c.get(maxNoStates+2, now.Add(time.Second)); !ok || !errors.Is(err, ErrNotFound) {
		t.Fatalf("the last ID: %v %v, want ErrNotFound for a second", err, ok)
	}
	if ok, _ := c.get(maxNoStates+2, now.Add(time.Second+time.Millisecond)); ok {
		t.Fatal("the last ID still kept after its second")
	}
}
