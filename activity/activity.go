// Package activity is the domain of the service: lottery activities with a
// fixed stock of participation slots, their life cycle, the slot tokens handed
// to the users who join them, and the Service that ties them together.
//
// It depends on the standard library only. Redis, MySQL, Kafka and HTTP live in
// adapter packages that implement the small interfaces declared here.
package activity

import (
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
)

// Limits of an activity's fields, as published in the API contract.
const (
	MaxNameLen        = 128
	MaxDescriptionLen = 2000
	MaxStock          = 10_000_000
	MaxPerUserLimit   = 1_000
	MaxUserIDLen      = 64
	// MaxShards is the most Redis shards an activity's stock is spread over.
	MaxShards = 64
)

// Sentinel errors of the domain. Adapters translate driver errors into these,
// and the HTTP layer maps them to statuses in one table.
var (
	ErrNotFound = errors.New("activity: not found")
	ErrSoldOut  = errors.New("activity: sold out")
	// ErrSlotsInFlight is returned instead of ErrSoldOut while every slot is
	// taken but some only by joins in flight, which may still give theirs
	// back: a join after them may succeed.
	ErrSlotsInFlight = errors.New("activity: every slot is taken, some by joins still in flight")
	ErrLimitReached  = errors.New("activity: per-user limit reached")
	ErrNotOpen       = errors.New("activity: not open")
	ErrInvalidState  = errors.New("activity: transition not allowed")
	ErrInvalid       = errors.New("activity: invalid input")
	ErrUnavailable   = errors.New("activity: dependency unavailable")
	// ErrAlreadyRedeemed is returned for a token redeemed before; the
	// error is a *RedeemedError that says when.
	ErrAlreadyRedeemed = errors.New("activity: token already redeemed")
	// ErrStockConflict is returned for a stock below the slots already
	// claimed; the error is a *StockConflictError that says how many.
	ErrStockConflict = errors.New("activity: stock below the slots already claimed")
	// ErrLeaseLost is returned by a SlotStore when a claim is no longer held
	// (its lease ran out and it was given back, or it was released).
	ErrLeaseLost = errors.New("activity: claim lease lost")
	// ErrNoState is returned by a SlotStore that holds no live state for an
	// activity: it was never opened, or the store lost it. The Service finds
	// out which from the repository.
	ErrNoState = errors.New("activity: no live state in the slot store")
)

// DependencyError is ErrUnavailable caused by one dependency: "redis",
// "mysql" or "kafka". Adapters return it, so that the failures of each
// dependency can be counted.
type DependencyError struct {
	Dependency string
	Err        error
}

// Unavailable returns a *DependencyError for dep failing with err.
func Unavailable(dep string, err error) error { return &DependencyError{Dependency: dep, Err: err} }

func (e *DependencyError) Error() string {
	return ErrUnavailable.Error() + ": " + e.Dependency + ": " + e.Err.Error()
}

// Unwrap makes errors.Is match ErrUnavailable and the cause.
func (e *DependencyError) Unwrap() []error { return []error{ErrUnavailable, e.Err} }

// LimitError is ErrLimitReached with the participations the user already
// holds, so that a user whose answer was lost can recover the token.
type LimitError struct {
	Held []Participation
	// Settled counts the user's tokens whose records are settled valid in
	// the repository, which a slot store need not keep: when it is not
	// zero, Held may lack them, and they are read from the repository.
	Settled int
}

func (e *LimitError) Error() string { return ErrLimitReached.Error() }

// Unwrap makes errors.Is(err, ErrLimitReached) true.
func (e *LimitError) Unwrap() error { return ErrLimitReached }

// Replay is what a SlotStore returns for a retry of a join that was already
// confirmed under the same idempotency key: the first answer.
type Replay struct {
	Participation Participation
	// Settled says that the first answer's record is valid in the
	// repository, and the slot store no longer keeps it: Participation is
	// empty, and the answer is the valid record with the idempotency key.
	Settled bool
}

func (e *Replay) Error() string { return "activity: retry of a confirmed join" }

// RedeemedError is ErrAlreadyRedeemed with the time of the redeem.
type RedeemedError struct {
	RedeemedAt time.Time
}

func (e *RedeemedError) Error() string { return ErrAlreadyRedeemed.Error() }

// Unwrap makes errors.Is(err, ErrAlreadyRedeemed) true.
func (e *RedeemedError) Unwrap() error { return ErrAlreadyRedeemed }

// StockConflictError is ErrStockConflict with the slots claimed (issued
// and in flight) when the change was asked, and the lowest the stock may
// go to now: the slots claimed, or the stock itself for an activity whose
// stock can only be raised while it is open, which Reason says.
type StockConflictError struct {
	Claimed, Lowest int64
	Reason          string
}

func (e *StockConflictError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("%s: %s: %d slots are claimed", ErrStockConflict, e.Reason, e.Claimed)
	}
	return fmt.Sprintf("%s: %d slots are claimed", ErrStockConflict, e.Claimed)
}

// Unwrap makes errors.Is(err, ErrStockConflict) true.
func (e *StockConflictError) Unwrap() error { return ErrStockConflict }

// ValidationError names the field of a request that is wrong and why.
// It matches ErrInvalid with errors.Is.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Activity is a lottery activity with a fixed stock of slots.
type Activity struct {
	ID           int64
	Name         string
	Description  string
	Stock        int64
	PerUserLimit int64
	BeginAt      time.Time
	EndAt        time.Time
	// AutoOpen makes an approved activity open itself when BeginAt comes.
	AutoOpen bool
	// Shards is the number of Redis shards its stock is spread over, 1 to
	// MaxShards; fixed once it leaves draft.
	Shards int
	State  State
	// DuplicateOf is, on the activity Duplicate returns, the one it copies;
	// it is told to the audit log and not kept.
	DuplicateOf int64
	// CreatedBy and UpdatedBy name the staff members who created the
	// activity and last edited it ("" when made without an actor).
	CreatedBy, UpdatedBy string
	// Surplus is the stock snapshot kept in MySQL: stock minus claimed slots
	// as of ReconciledAt.
	Surplus      int64
	ReconciledAt *time.Time
	// Recorded is the number of valid participation records in MySQL.
	Recorded int64
	// Epoch counts the times the activity's Redis state was built: 1 at
	// open, one more at every rebuild after Redis lost it, of the whole
	// state or of one shard's.
	Epoch int64
	// ShardEpochs is the epoch of each shard of a sharded activity once one
	// of its shards was rebuilt alone; nil while every shard is at Epoch
	// (ShardEpoch).
	ShardEpochs []int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// OpenedAt and ClosedAt are when it last opened and when it closed
	// (nil: not yet).
	OpenedAt, ClosedAt *time.Time
	// Summary is what the sale came to, from its close on (nil before).
	Summary *Summary
}

// Stats are the live numbers of an activity.
type Stats struct {
	Claimed      int64      // the Redis used-slot counter
	InFlight     int64      // slots claimed but neither issued nor released yet
	Issued       int64      // tokens handed out
	Recorded     int64      // valid participation records in MySQL
	Surplus      int64      // the stock snapshot in MySQL
	ReconciledAt *time.Time // when Surplus was last written
	// TurnedAway counts the joins answered without a token, while the
	// activity's Redis state is kept (nil otherwise).
	TurnedAway *TurnedAway
	// Unavailable names the dependencies that did not answer ("redis",
	// "mysql"): the numbers they keep are not known. ReadAt is, with
	// "mysql", when the activity was last read from MySQL.
	Unavailable []string
	ReadAt      *time.Time
}

// Lacks reports whether the numbers kept by dependency dep are not known.
func (st *Stats) Lacks(dep string) bool { return slices.Contains(st.Unavailable, dep) }

// Counters are the numbers the slot store keeps for an activity.
type Counters struct {
	Claimed  int64
	InFlight int64
	Issued   int64
}

// Fields are the editable fields of an activity. A nil field is absent: it
// takes its default on create and is left as it is on update.
type Fields struct {
	Name         *string
	Description  *string
	Stock        *int64
	PerUserLimit *int64
	BeginAt      *time.Time
	EndAt        *time.Time
	AutoOpen     *bool
	Shards       *int
}

// onlyAutoOpen reports whether f changes AutoOpen and nothing else: the one
// edit an approved activity takes.
func (f Fields) onlyAutoOpen() bool {
	return f.AutoOpen != nil && f == Fields{AutoOpen: f.AutoOpen}
}

// apply copies the present fields onto a and validates the result; a
// with no shards yet (a new activity) gets 1 when f has none.
// It returns a *ValidationError naming the first field that is wrong.
func (f Fields) apply(a *Activity) error {
	if a.Shards == 0 {
		a.Shards = 1
	}
	if f.Name != nil {
		a.Name = *f.Name
	}
	if f.Description != nil {
		a.Description = *f.Description
	}
	if f.Stock != nil {
		a.Stock = *f.Stock
	}
	if f.PerUserLimit != nil {
		a.PerUserLimit = *f.PerUserLimit
	}
	if f.BeginAt != nil {
		a.BeginAt = f.BeginAt.UTC().Truncate(time.Millisecond)
	}
	if f.EndAt != nil {
		a.EndAt = f.EndAt.UTC().Truncate(time.Millisecond)
	}
	if f.AutoOpen != nil {
		a.AutoOpen = *f.AutoOpen
	}
	if f.Shards != nil {
		a.Shards = *f.Shards
	}
	return a.validate()
}

func (a *Activity) validate() error {
	switch n := utf8.RuneCountInString(a.Name); {
	case n == 0:
		return invalid("name", "is required")
	case n > MaxNameLen:
		return invalid("name", "must be at most %d characters", MaxNameLen)
	case !utf8.ValidString(a.Name):
		return invalid("name", "must be valid UTF-8")
	}
	if utf8.RuneCountInString(a.Description) > MaxDescriptionLen {
		return invalid("description", "must be at most %d characters", MaxDescriptionLen)
	}
	if !utf8.ValidString(a.Description) {
		return invalid("description", "must be valid UTF-8")
	}
	if a.Stock < 1 || a.Stock > MaxStock {
		return invalid("stock", "must be between 1 and %d", MaxStock)
	}
	if a.PerUserLimit < 1 || a.PerUserLimit > MaxPerUserLimit {
		return invalid("perUserLimit", "must be between 1 and %d", MaxPerUserLimit)
	}
	if a.Shards < 1 || a.Shards > MaxShards {
		return invalid("shards", "must be 1 to %d", MaxShards)
	}
	if a.BeginAt.IsZero() {
		return invalid("beginAt", "is required")
	}
	if a.EndAt.IsZero() {
		return invalid("endAt", "is required")
	}
	if a.BeginAt.Year() < 2000 || a.EndAt.Year() > 9999 {
		return invalid("beginAt", "must be a date between the years 2000 and 9999")
	}
	if !a.EndAt.After(a.BeginAt) {
		return invalid("endAt", "must be after beginAt")
	}
	return nil
}

// MaxIdempotencyKeyLen is the longest accepted Idempotency-Key.
const MaxIdempotencyKeyLen = 128

// ValidIdempotencyKey reports whether k is 1–128 characters of
// [A-Za-z0-9_.:-].
func ValidIdempotencyKey(k string) bool {
	if len(k) == 0 || len(k) > MaxIdempotencyKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c != ':' && !userIDChar(c) {
			return false
		}
	}
	return true
}

func userIDChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
}

// ValidUserID reports whether id is 1–64 characters of [A-Za-z0-9_.-].
func ValidUserID(id string) bool {
	if len(id) == 0 || len(id) > MaxUserIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !userIDChar(id[i]) {
			return false
		}
	}
	return true
}

// Participation is one join: the token a user holds for a slot.
type Participation struct {
	Token      string
	ActivityID int64
	Slot       int64
	UserID     string
	ClaimID    string
	Epoch      int64 // of the claim
	// Seq is the claim's number in its epoch's claim sequence, and Held the
	// sequence numbers of the claims of the same epoch the user held when it
	// was made. A rebuild reads from them which claims had been given back.
	Seq  int64
	Held []int64
	// IdempotencyKey is the key the join was made with, or "".
	IdempotencyKey string
	IssuedAt       time.Time
	Status         RecordStatus // of its record in MySQL
	// RedeemedAt is when the draw redeemed the token, or nil.
	RedeemedAt *time.Time
}

// RecordStatus is the status of a participation record in MySQL.
type RecordStatus string

// The statuses of a participation record.
const (
	RecordPending RecordStatus = "pending" // recorded, its claim not settled yet
	RecordValid   RecordStatus = "valid"   // its claim was confirmed: a token
	RecordVoid    RecordStatus = "void"    // its claim was given back
)

// ListFilter selects activities for a listing, in the order Sort says.
type ListFilter struct {
	State State // empty: every state
	// Query, when not empty, keeps the activities whose name holds it,
	// whatever the case.
	Query  string
	Sort   ListSort
	Limit  int
	Offset int
}

// ListSort is the order of a listing.
type ListSort string

// The orders of a listing.
const (
	SortCreated     ListSort = "created"  // newest first: the default
	SortBeginAt     ListSort = "beginAt"  // earliest beginAt first
	SortBeginAtDesc ListSort = "-beginAt" // latest beginAt first
)

// Valid reports whether s is a known order ("" is SortCreated).
func (s ListSort) Valid() bool {
	return s == "" || s == SortCreated || s == SortBeginAt || s == SortBeginAtDesc
}

// ActivityPage is one page of a listing and how many activities match its
// filter in all.
type ActivityPage struct {
	Activities []*Activity
	Total      int64
}

// ShardEpoch returns the epoch of shard j of a: the claims on the shard are
// made in it.
func (a *Activity) ShardEpoch(j int) int64 {
	if j >= 0 && j < len(a.ShardEpochs) {
		return a.ShardEpochs[j]
	}
	return a.Epoch
}

// HomeShard is the shard of an activity of the given number of shards on
// which a user's claims are held: bytes 4 to 8 of the SHA-1 of the user ID
// (the first four pick the user's bucket within the shard), modulo shards.
func HomeShard(userID string, shards int) int {
	if shards <= 1 {
		return 0
	}
	sum := sha1.Sum([]byte(userID))
	return int(binary.BigEndian.Uint32(sum[4:8]) % uint32(shards))
}
