package activity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
)

// Role is what a staff member may do through the admin API.
type Role string

// The roles.
const (
	RoleAdmin    Role = "admin"    // everything, staff included
	RoleEditor   Role = "editor"   // create and edit drafts
	RoleApprover Role = "approver" // approve and refuse drafts
	RoleOperator Role = "operator" // open, close, change the stock, autoOpen
	RoleDraw     Role = "draw"     // read and redeem tokens
	RoleViewer   Role = "viewer"   // read only
	// RoleSystem is the role of the service's own periodic work (an open
	// or a close by schedule) in the audit log; no credential has it.
	RoleSystem Role = "system"
)

// Roles lists the roles a staff member may have.
var Roles = []Role{RoleAdmin, RoleEditor, RoleApprover, RoleOperator, RoleDraw, RoleViewer}

// Valid reports whether r is a role a staff member may have.
func (r Role) Valid() bool {
	for _, v := range Roles {
		if r == v {
			return true
		}
	}
	return false
}

// BootstrapActor is the name of the actor of SECKILL_ADMIN_TOKEN, with role
// admin, and CLIActor that of seckill staff; no staff member may take
// them, or that of the schedule.
const (
	BootstrapActor = "admin"
	CLIActor       = "cli"
)

// Actor is who asks for a change: the staff member (or the service's own
// schedule) and the request, as the audit log records them.
type Actor struct {
	Name      string
	Role      Role
	RequestID string
}

type actorKey struct{}

// WithActor returns ctx carrying the actor of its changes.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorOf returns the actor ctx carries, if any. A change without one (a
// test, a tool) is not audited.
func ActorOf(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	return a, ok
}

// scheduleActor is the actor of what the job does by the clock.
var scheduleActor = Actor{Name: "schedule", Role: RoleSystem}

// ErrForbidden is returned for an action the actor's role does not allow,
// or that four eyes forbid; a *ForbiddenError says why.
var ErrForbidden = errors.New("activity: forbidden")

// ErrExists is returned for a staff name that is taken.
var ErrExists = errors.New("activity: already exists")

// ForbiddenError is ErrForbidden with the reason.
type ForbiddenError struct{ Reason string }

func (e *ForbiddenError) Error() string { return e.Reason }

// Unwrap makes errors.Is(err, ErrForbidden) true.
func (e *ForbiddenError) Unwrap() error { return ErrForbidden }

// Forbidden returns a *ForbiddenError for reason.
func Forbidden(format string, args ...any) error {
	return &ForbiddenError{Reason: fmt.Sprintf(format, args...)}
}

// Staff is a staff member's account.
type Staff struct {
	Name      string
	Role      Role
	CreatedAt time.Time
	CreatedBy string
}

// StaffStore keeps staff accounts in MySQL, each credential as the
// SHA-256 of its token.
type StaffStore interface {
	// AddStaff stores a new account; ErrExists when the name is taken.
	AddStaff(ctx context.Context, s Staff, tokenHash [32]byte) error
	// StaffList returns every account, by name.
	StaffList(ctx context.Context) ([]Staff, error)
	// RemoveStaff deletes an account; ErrNotFound when there is none.
	RemoveStaff(ctx context.Context, name string) error
	// StaffByToken returns the account of a token hash; ErrNotFound.
	StaffByToken(ctx context.Context, tokenHash [32]byte) (*Staff, error)
	// Audit returns entries newest first.
	Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
}

// AuditEntry is one change made through the admin API (or by the
// schedule): when, by whom, what, and the state before and after, as JSON.
type AuditEntry struct {
	ID         int64
	At         time.Time
	Actor      string
	Role       Role
	Action     string
	ActivityID int64  // 0: none
	Target     string // a staff name, a token
	Before     string // JSON, or "" for none
	After      string
	RequestID  string
}

// AuditFilter selects audit entries, newest first, older than Before (an
// entry ID) when it is not zero.
type AuditFilter struct {
	ActivityID int64
	Actor      string
	Before     int64
	Limit      int
}

// MaxStaffNameLen is the longest staff name.
const MaxStaffNameLen = 64

// TokenHash is the hash a credential is kept and looked up by.
func TokenHash(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// newStaffToken returns a credential: 32 random bytes (256 bits), base64url.
func newStaffToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return "sk_" + base64.RawURLEncoding.EncodeToString(b)
}

// Staffing runs staff accounts: it adds and removes them and tells a
// credential's actor.
type Staffing struct {
	store StaffStore
	now   func() time.Time
}

// NewStaffing returns the staff accounts kept in store.
func NewStaffing(store StaffStore) *Staffing { return &Staffing{store: store, now: time.Now} }

// Add creates an account and returns it with its token, which is shown
// this once: only its hash is kept. It returns a *ValidationError for a
// bad name or role, and ErrExists.
func (s *Staffing) Add(ctx context.Context, name string, role Role) (*Staff, string, error) {
	if !ValidUserID(name) {
		return nil, "", invalid("name", "must be 1 to %d characters of A-Z a-z 0-9 _ . -", MaxStaffNameLen)
	}
	if name == BootstrapActor || name == CLIActor || name == scheduleActor.Name {
		return nil, "", invalid("name", "%q is reserved", name)
	}
	if !role.Valid() {
		return nil, "", invalid("role", "must be one of admin, editor, approver, operator, draw, viewer")
	}
	by := ""
	if a, ok := ActorOf(ctx); ok {
		by = a.Name
	}
	st := Staff{Name: name, Role: role, CreatedAt: s.now().UTC().Truncate(time.Millisecond), CreatedBy: by}
	token := newStaffToken()
	if err := s.store.AddStaff(ctx, st, TokenHash(token)); err != nil {
		return nil, "", err
	}
	return &st, token, nil
}

// List returns every account, by name.
func (s *Staffing) List(ctx context.Context) ([]Staff, error) { return s.store.StaffList(ctx) }

// Remove deletes an account: its credential is refused from the next
// request on, on every instance (each looks it up in MySQL).
func (s *Staffing) Remove(ctx context.Context, name string) error {
	if !ValidUserID(name) {
		return ErrNotFound
	}
	return s.store.RemoveStaff(ctx, name)
}

// Actor returns the actor of a staff credential; ErrNotFound for none.
func (s *Staffing) Actor(ctx context.Context, token string) (Actor, error) {
	st, err := s.store.StaffByToken(ctx, TokenHash(token))
	if err != nil {
		return Actor{}, err
	}
	return Actor{Name: st.Name, Role: st.Role}, nil
}

// MaxAuditPage is the most entries a page of the audit log holds.
const MaxAuditPage = 500

// Audit returns audit entries newest first.
func (s *Staffing) Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	if f.Limit < 1 || f.Limit > MaxAuditPage {
		return nil, invalid("limit", "must be between 1 and %d", MaxAuditPage)
	}
	return s.store.Audit(ctx, f)
}
