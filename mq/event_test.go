package mq_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"seckill/activity"
	"seckill/mq"
)

// sampleParticipation returns a participation whose every field is valid.
func sampleParticipation(t *testing.T) activity.Participation {
	t.Helper()
	signer := newSigner(t)
	return activity.Participation{
		Token:      signer.Sign(42, 7, [12]byte{1, 2, 3}),
		ActivityID: 42,
		Slot:       7,
		UserID:     "user_7.a-b",
		ClaimID:    "AQIDAAAAAAAAAAAA",
		IssuedAt:   time.Date(2025, 11, 11, 0, 0, 0, 123_000_000, time.FixedZone("CST", 8*3600)),
	}
}

func TestEventRoundTrip(t *testing.T) {
	p := sampleParticipation(t)
	b, err := mq.EncodeEvent(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := mq.DecodeEvent(b)
	if err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if got.Token != p.Token || got.ActivityID != p.ActivityID || got.Slot != p.Slot ||
		got.UserID != p.UserID || got.ClaimID != p.ClaimID || got.Status != "" {
		t.Fatalf("round trip changed the event:\n got  %+v\n want %+v", got, p)
	}
	if !got.IssuedAt.Equal(p.IssuedAt) {
		t.Fatalf("IssuedAt = %v, want %v", got.IssuedAt, p.IssuedAt)
	}
	if got.IssuedAt.Location() != time.UTC {
		t.Fatalf("IssuedAt is in %v, want UTC", got.IssuedAt.Location())
	}
}

func TestDecodeEventRejects(t *testing.T) {
	valid := sampleParticipation(t)
	// event returns the wire form of valid with one field changed.
	event := func(change func(m map[string]any)) []byte {
		t.Helper()
		b, err := mq.EncodeEvent(valid)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		change(m)
		if b, err = json.Marshal(m); err != nil {
			t.Fatal(err)
		}
		return b
	}
	set := func(k string, v any) func(map[string]any) { return func(m map[string]any) { m[k] = v } }
	drop := func(k string) func(map[string]any) { return func(m map[string]any) { delete(m, k) } }

	tests := []struct {
		name string
		in   []byte
	}{
		{"Empty", nil},
		{"NotJSON", []byte("not json at all")},
		{"TruncatedJSON", event(func(map[string]any) {})[:20]},
		{"JSONArray", []byte(`[1,2,3]`)},
		{"JSONNull", []byte(`null`)},
		{"EmptyObject", []byte(`{}`)},
		{"VersionZero", event(set("v", 0))},
		{"VersionTwo", event(set("v", 2))},
		{"VersionMissing", event(drop("v"))},
		{"VersionNotANumber", event(set("v", "1"))},
		{"TokenMissing", event(drop("token"))},
		{"TokenTooShort", event(set("token", valid.Token[:activity.TokenLen-1]))},
		{"TokenTooLong", event(set("token", valid.Token+"A"))},
		{"ActivityIDMissing", event(drop("activityId"))},
		{"ActivityIDZero", event(set("activityId", 0))},
		{"ActivityIDNegative", event(set("activityId", -42))},
		{"ActivityIDNotANumber", event(set("activityId", "42"))},
		{"SlotMissing", event(drop("slot"))},
		{"SlotZero", event(set("slot", 0))},
		{"SlotNegative", event(set("slot", -1))},
		{"UserIDMissing", event(drop("userId"))},
		{"UserIDBadCharacter", event(set("userId", "user 7"))},
		{"UserIDTooLong", event(set("userId", strings.Repeat("u", activity.MaxUserIDLen+1)))},
		{"ClaimIDMissing", event(drop("claimId"))},
		{"ClaimIDTooLong", event(set("claimId", strings.Repeat("c", 33)))},
		{"IssuedAtMissing", event(drop("issuedAt"))},
		{"IssuedAtZero", event(set("issuedAt", time.Time{}))},
		{"IssuedAtNotATime", event(set("issuedAt", "yesterday"))},
		{"SlotOverTheMaxStock", event(set("slot", activity.MaxStock+1))},
		{"EpochNegative", event(set("epoch", -1))},
		{"SeqNegative", event(set("seq", -1))},
		{"HeldOverTheMaxLimit", event(set("held", make([]int64, activity.MaxPerUserLimit+1)))},
		{"IdempotencyKeyBad", event(set("idempotencyKey", "no spaces"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := mq.DecodeEvent(tt.in)
			if err == nil {
				t.Fatalf("DecodeEvent(%q) = %+v, want an error", tt.in, p)
			}
		})
	}

	t.Run("ValidEventAccepted", func(t *testing.T) {
		// The table above must be rejecting its one bad field, not the base.
		if _, err := mq.DecodeEvent(event(func(map[string]any) {})); err != nil {
			t.Fatalf("the unchanged event is rejected: %v", err)
		}
	})
	// The bounds themselves are in range.
	for _, tt := range []struct {
		name string
		in   []byte
	}{
		{"ActivityIDOne", event(set("activityId", 1))},
		{"SlotOne", event(set("slot", 1))},
		{"SlotAtTheMaxStock", event(set("slot", activity.MaxStock))},
		{"HeldAtTheMaxLimit", event(set("held", make([]int64, activity.MaxPerUserLimit)))},
		{"IdempotencyKey", event(set("idempotencyKey", "3f2c-retry_1"))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := mq.DecodeEvent(tt.in); err != nil {
				t.Fatalf("DecodeEvent(%s): %v", tt.in, err)
			}
		})
	}
}

// TestDefaultProduceTimeout: a join waits 3 s for the broker unless told
// otherwise, as the README says.
func TestDefaultProduceTimeout(t *testing.T) {
	if mq.DefaultProduceTimeout != 3*time.Second {
		t.Fatalf("default produce timeout %v, documented as 3s", mq.DefaultProduceTimeout)
	}
}
