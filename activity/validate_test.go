package activity

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestValidateBounds: each limit of an activity's fields holds at the
// bound and refuses one past it, naming the field.
func TestValidateBounds(t *testing.T) {
	base := func() Activity {
		return Activity{Name: "n", Stock: 1, PerUserLimit: 1, Shards: 1,
			BeginAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), EndAt: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)}
	}
	for _, c := range []struct {
		name   string
		change func(a *Activity)
		field  string // "" when valid
	}{
		{"Base", func(*Activity) {}, ""},
		{"DescriptionAtMax", func(a *Activity) { a.Description = strings.Repeat("说", MaxDescriptionLen) }, ""},
		{"DescriptionPastMax", func(a *Activity) { a.Description = strings.Repeat("d", MaxDescriptionLen+1) }, "description"},
		{"DescriptionNotUTF8", func(a *Activity) { a.Description = "\xff" }, "description"},
		{"NameNotUTF8", func(a *Activity) { a.Name = "\xff" }, "name"},
		{"StockZero", func(a *Activity) { a.Stock = 0 }, "stock"},
		{"StockAtMax", func(a *Activity) { a.Stock = MaxStock }, ""},
		{"StockPastMax", func(a *Activity) { a.Stock = MaxStock + 1 }, "stock"},
		{"LimitZero", func(a *Activity) { a.PerUserLimit = 0 }, "perUserLimit"},
		{"LimitAtMax", func(a *Activity) { a.PerUserLimit = MaxPerUserLimit }, ""},
		{"LimitPastMax", func(a *Activity) { a.PerUserLimit = MaxPerUserLimit + 1 }, "perUserLimit"},
		{"ShardsZero", func(a *Activity) { a.Shards = 0 }, "shards"},
		{"ShardsNegative", func(a *Activity) { a.Shards = -1 }, "shards"},
		{"ShardsAtMax", func(a *Activity) { a.Shards = MaxShards }, ""},
		{"ShardsPastMax", func(a *Activity) { a.Shards = MaxShards + 1 }, "shards"},
		{"NoBegin", func(a *Activity) { a.BeginAt = time.Time{} }, "beginAt"},
		{"NoEnd", func(a *Activity) { a.EndAt = time.Time{} }, "endAt"},
		{"BeginIn2000", func(a *Activity) { a.BeginAt = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) }, ""},
		{"BeginIn1999", func(a *Activity) { a.BeginAt = time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC) }, "beginAt"},
		{"EndIn9999", func(a *Activity) { a.EndAt = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC) }, ""},
		{"EndIn10000", func(a *Activity) { a.EndAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "beginAt"},
		{"EndAtBegin", func(a *Activity) { a.EndAt = a.BeginAt }, "endAt"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := base()
			c.change(&a)
			err := a.validate()
			var verr *ValidationError
			switch {
			case c.field == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.field != "" && (!errors.As(err, &verr) || verr.Field != c.field):
				t.Fatalf("got %v, want a validation error of %s", err, c.field)
			}
		})
	}
}

// TestUserIDAndKeyCharacters: user IDs are 1–64 characters of
// [A-Za-z0-9_.-], idempotency keys 1–128 of those and ":"; the characters
// next to each range are refused.
func TestUserIDAndKeyCharacters(t *testing.T) {
	const ok = "azAZ09_.-"
	if !ValidUserID(ok) || !ValidUserID(strings.Repeat("u", MaxUserIDLen)) {
		t.Fatal("a valid user ID refused")
	}
	if !ValidIdempotencyKey(ok+":") || !ValidIdempotencyKey(strings.Repeat("k", MaxIdempotencyKeyLen)) {
		t.Fatal("a valid idempotency key refused")
	}
	if ValidUserID("") || ValidUserID(strings.Repeat("u", MaxUserIDLen+1)) || ValidUserID("a:b") {
		t.Fatal("an empty, too long or ':' user ID accepted")
	}
	if ValidIdempotencyKey("") || ValidIdempotencyKey(strings.Repeat("k", MaxIdempotencyKeyLen+1)) {
		t.Fatal("an empty or too long idempotency key accepted")
	}
	for _, c := range []string{"`", "{", "@", "[", "/", " ", ";", "~", "\xff", "é"} {
		if ValidUserID("a"+c) || ValidIdempotencyKey("a"+c) {
			t.Errorf("%q accepted", c)
		}
	}
}
