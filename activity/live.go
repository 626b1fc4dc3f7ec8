package activity

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// What staff and the lottery draw do with a live activity: redeem a token
// once, change the stock while it sells, open it by schedule, export its
// winners.

// Redeem consumes a valid token once, for the lottery draw, and returns its
// participation with RedeemedAt. It returns a *RedeemedError
// (ErrAlreadyRedeemed) for a token redeemed before, ErrNotFound for a
// forged, altered, unknown or void token, and ErrUnavailable when a
// dependency fails or the token's record has not reached MySQL yet.
//
// The redeem is a write of MySQL, the system of record, so a token valid in
// Redis alone waits for its record: a pending record whose claim was
// confirmed is settled valid first; a record still on its way through the
// event log (a few milliseconds behind its join, as a rule) is waited for
// up to recordWait, then answers ErrUnavailable, and a retry finds it. The
// record is not made here from what Redis keeps of the claim: the event
// carries more (the idempotency key, which a rebuild keeps), and a record
// once written keeps its row.
func (s *Service) Redeem(ctx context.Context, token string) (*Participation, error) {
	p, err := s.Token(ctx, token)
	for wait := time.Now().Add(recordWait); err == nil && p.Status == "" && time.Now().Before(wait); {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
		case <-time.After(25 * time.Millisecond):
		}
		p, err = s.Token(ctx, token)
	}
	if err != nil {
		return nil, err
	}
	switch p.Status {
	case RecordValid:
	case RecordPending:
		// Token asked Redis: its claim was confirmed.
		if err := s.repo.SettleParticipations(ctx, []Participation{*p}, nil); err != nil {
			return nil, err
		}
		if err := s.forget(ctx, []Participation{*p}); err != nil && s.logGate.Open() {
			s.log.Warn("redeem: dropping a confirmed claim from Redis failed", "err", err)
		}
	default:
		return nil, fmt.Errorf("%w: the token's record is on its way to MySQL; retry", ErrUnavailable)
	}
	return s.repo.Redeem(ctx, token, s.now().UTC().Truncate(time.Millisecond))
}

// recordWait is how long a redeem waits for the record of a token that
// Redis alone knows yet.
const recordWait = time.Second

// ChangeStock sets the stock of a draft, approved or open activity and
// returns the activity afterwards. An open activity's new stock counts at
// once for every join, on every instance: raised, exactly the added slots
// sell (after a sell-out too); lowered, it must stay at or above the slots
// already claimed, issued and in flight, else a *StockConflictError
// (ErrStockConflict). It returns ErrInvalidState for a refused or closed
// activity, ErrNotFound, a *ValidationError, or ErrUnavailable.
//
// The change takes the activity's state lock, as an open, a close and a
// rebuild do, so that none of them reads a stock that is about to change.
// The store that sells the least goes first: raised, MySQL (a rebuild reads
// it) and then Redis; lowered, Redis (whose check against the slots claimed
// is atomic with the claims) and then MySQL. A change that fails half way
// therefore never lets Redis sell more than MySQL says, and the admin is
// answered with the error and asks again. A raise that failed in Redis is
// not taken back in MySQL: Redis may have applied it (an answer lost to a
// timeout), and MySQL's stock at or above Redis's is the safe way round; a
// rebuild would apply it.
func (s *Service) ChangeStock(ctx context.Context, id, stock int64) (*Activity, error) {
	if stock < 1 || stock > MaxStock {
		return nil, invalid("stock", "must be between 1 and %d", MaxStock)
	}
	a, err := s.repo.Activity(ctx, id)
	if err != nil {
		return nil, err
	}
	if !a.State.StockChangeable() {
		return nil, ErrInvalidState
	}
	l, err := s.lockState(ctx, id)
	if err != nil {
		return nil, err
	}
	defer l.Release()
	if a, err = s.repo.Activity(ctx, id); err != nil {
		return nil, err
	}
	s.slots.Learn(a)
	switch {
	case !a.State.StockChangeable():
		return nil, ErrInvalidState
	case a.State != StateOpen:
		if err := s.checkOpenedOnce(ctx, a, a.Shards, stock); err != nil {
			return nil, err
		}
		err = s.repo.SetStock(ctx, id, a.State, stock)
	case stock >= a.Stock:
		err = s.raiseStock(ctx, a, stock)
	default:
		err = s.lowerStock(ctx, a, stock)
	}
	if err != nil {
		return nil, err
	}
	// A sell-out this instance remembers is over.
	s.soldOut.Delete(id)
	return s.repo.Activity(ctx, id)
}

func (s *Service) raiseStock(ctx context.Context, a *Activity, stock int64) error {
	if err := s.repo.SetStock(ctx, a.ID, StateOpen, stock); err != nil {
		return err
	}
	if err := s.slots.SetStock(ctx, a.ID, stock); err != nil {
		return s.stockError(ctx, a.ID, err)
	}
	return nil
}

func (s *Service) lowerStock(ctx context.Context, a *Activity, stock int64) error {
	if err := s.slots.SetStock(ctx, a.ID, stock); err != nil {
		return s.stockError(ctx, a.ID, err)
	}
	return s.repo.SetStock(ctx, a.ID, StateOpen, stock)
}

// stockError explains a stock change the slot store refused.
func (s *Service) stockError(ctx context.Context, id int64, err error) error {
	if errors.Is(err, ErrNoState) {
		return s.noState(ctx, id)
	}
	return err
}

// An activity with AutoOpen is opened a job lease before its beginAt (at
// least autoOpenAhead): the instance that opens it may die, and another
// takes its lease over within that time, so that the activity is preheated
// when beginAt comes either way. Its claims go by beginAt all the same:
// joins before it answer not open. autoOpenSkew is how far this instance's
// clock may lag the slot store's, the clock claims go by, for an open by
// schedule to be on time.
const (
	autoOpenAhead = time.Second
	autoOpenSkew  = 10 * time.Minute
)

// openDue opens the approved activities with AutoOpen whose beginAt is due
// by the slot store's clock (the one their claims go by, as a close by
// schedule does), but not those whose endAt has passed, and returns how
// many it opened. An open by another instance at the same moment makes this
// one's ErrInvalidState, which is no error: the state moves from approved
// once.
func (s *Service) openDue(ctx context.Context) (int, error) {
	ctx = WithActor(ctx, scheduleActor)
	now := s.now()
	due, err := s.repo.DueActivities(ctx, now.Add(autoOpenSkew), now)
	if err != nil {
		return 0, err
	}
	opened := 0
	var errs []error
	for _, a := range due {
		clock, err := s.slots.Now(ctx, a.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if clock.Add(max(autoOpenAhead, s.jobLease)).Before(a.BeginAt) || !clock.Before(a.EndAt) {
			continue
		}
		// Turned off since the list was read: left approved.
		_, err = s.transition(ctx, a.ID, ActionOpen, func(a *Activity) error {
			if !a.AutoOpen {
				return ErrInvalidState
			}
			return nil
		})
		switch {
		case err == nil:
			opened++
			s.log.Info("opened an activity by its schedule", "activity", a.ID, "beginAt", a.BeginAt)
		case !errors.Is(err, ErrInvalidState):
			errs = append(errs, fmt.Errorf("open activity %d by its schedule: %w", a.ID, err))
		}
	}
	return opened, errors.Join(errs...)
}

// ExportPage is a page of an activity's valid records, in slot order.
type ExportPage struct {
	Participations []Participation
	// Next is the cursor of the page after this one, or "" after the last.
	Next string
}

// MaxExportPage is the most records a page of the export holds.
const MaxExportPage = 1000

// Participations returns a page of up to limit valid records of an activity
// in slot order, from the one after the cursor on ("" for the first page).
// It returns ErrNotFound for no such activity and a *ValidationError for a
// cursor this service did not make or a limit out of 1 to MaxExportPage.
func (s *Service) Participations(ctx context.Context, id int64, after string, limit int) (*ExportPage, error) {
	if limit < 1 || limit > MaxExportPage {
		return nil, invalid("limit", "must be between 1 and %d", MaxExportPage)
	}
	slot, token, err := parseCursor(after)
	if err != nil {
		return nil, err
	}
	if _, err := s.repo.Activity(ctx, id); err != nil {
		return nil, err
	}
	// One more than asked tells whether there is a page after this one.
	ps, err := s.repo.ValidParticipations(ctx, id, slot, token, limit+1)
	if err != nil {
		return nil, err
	}
	page := &ExportPage{Participations: ps}
	if len(ps) > limit {
		page.Participations = ps[:limit]
		last := ps[limit-1]
		page.Next = fmt.Sprintf("%d.%s", last.Slot, last.Token)
	}
	return page, nil
}

// parseCursor reads a cursor of Participations: "slot.token" of the last
// record of the page before.
func parseCursor(c string) (slot int64, token string, err error) {
	if c == "" {
		return 0, "", nil
	}
	bad := invalid("after", "must be the next cursor of an earlier page")
	n, tok, ok := cutCursor(c)
	if !ok || len(tok) != TokenLen {
		return 0, "", bad
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; !userIDChar(c) || c == '.' {
			return 0, "", bad
		}
	}
	return n, tok, nil
}

// cutCursor splits "slot.token" with slot a positive decimal of at most
// ten digits without leading zeros.
func cutCursor(c string) (int64, string, bool) {
	var n int64
	for i := 0; i < len(c) && i <= 10; i++ {
		ch := c[i]
		switch {
		case ch == '.' && i > 0:
			return n, c[i+1:], true
		case ch < '0' || ch > '9' || (i == 0 && ch == '0'):
			return 0, "", false
		}
		n = n*10 + int64(ch-'0')
	}
	return 0, "", false
}
