package activity_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"seckill/activity"
	"seckill/internal/testenv"
)

// TestShards: an activity is created with 1 shard unless it asks for more,
// up to MaxShards; a draft's shards may be edited, those of an approved
// activity not, even along with autoOpen.
func TestShards(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	begin := time.Now().Add(time.Hour)
	end := begin.Add(time.Hour)
	fields := func(shards *int) activity.Fields {
		name, stockN := "sharded", int64(10)
		return activity.Fields{Name: &name, Stock: &stockN, BeginAt: &begin, EndAt: &end, Shards: shards}
	}
	n := func(v int) *int { return &v }

	t.Run("DefaultIsOne", func(t *testing.T) {
		a, err := env.Svc.Create(ctx, fields(nil))
		if err != nil {
			t.Fatal(err)
		}
		if a.Shards != 1 {
			t.Fatalf("created with %d shards, want 1", a.Shards)
		}
		if got, err := env.Svc.Get(ctx, a.ID); err != nil || got.Shards != 1 {
			t.Fatalf("read back %+v, %v, want 1 shard", got, err)
		}
	})
	t.Run("OutOfRangeRefused", func(t *testing.T) {
		for _, v := range []int{0, -1, activity.MaxShards + 1} {
			_, err := env.Svc.Create(ctx, fields(n(v)))
			var verr *activity.ValidationError
			if !errors.As(err, &verr) || verr.Field != "shards" || err.Error() != "shards: must be 1 to 64" {
				t.Errorf("shards %d: %v, want the validation error of shards", v, err)
			}
		}
	})
	t.Run("EditedInDraftOnly", func(t *testing.T) {
		a, err := env.Svc.Create(ctx, fields(n(3)))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := env.Svc.Get(ctx, a.ID); err != nil || got.Shards != 3 {
			t.Fatalf("read back %+v, %v, want 3 shards", got, err)
		}
		got, err := env.Svc.Update(ctx, a.ID, activity.Fields{Shards: n(activity.MaxShards)})
		if err != nil || got.Shards != activity.MaxShards || got.Stock != 10 {
			t.Fatalf("edit of a draft's shards: %+v, %v, want %d shards and the stock kept", got, err, activity.MaxShards)
		}
		if _, err := env.Svc.Update(ctx, a.ID, activity.Fields{Shards: n(0)}); err == nil {
			t.Fatal("a draft took 0 shards")
		}
		if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionApprove); err != nil {
			t.Fatal(err)
		}
		on := true
		for _, f := range []activity.Fields{{Shards: n(2)}, {Shards: n(2), AutoOpen: &on}} {
			if _, err := env.Svc.Update(ctx, a.ID, f); !errors.Is(err, activity.ErrInvalidState) {
				t.Fatalf("edit of an approved activity's shards: %v, want ErrInvalidState", err)
			}
		}
		if got, err := env.Svc.Get(ctx, a.ID); err != nil || got.Shards != activity.MaxShards || got.AutoOpen {
			t.Fatalf("after refused edits %+v, %v, want %d shards, autoOpen off", got, err, activity.MaxShards)
		}
	})
}
