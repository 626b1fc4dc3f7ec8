package activity

import (
	"context"
	"slices"
)

// outcomes asks the slot store what became of the claims of ps, one
// activity at a time.
func (s *Service) outcomes(ctx context.Context, ps []Participation) ([]Outcome, error) {
	out := make([]Outcome, len(ps))
	byActivity := map[int64][]int{}
	for i, p := range ps {
		byActivity[p.ActivityID] = append(byActivity[p.ActivityID], i)
	}
	for id, idx := range byActivity {
		group := make([]Participation, len(idx))
		for j, i := range idx {
			group[j] = ps[i]
		}
		outs, err := s.slots.Settle(ctx, id, group)
		if err == nil && slices.Contains(outs, OutcomeUnknown) && s.learn(ctx, id) {
			// Maybe on shards this instance did not know of.
			outs, err = s.slots.Settle(ctx, id, group)
		}
		if err != nil {
			return nil, err
		}
		for j, i := range idx {
			out[i] = outs[j]
		}
	}
	return out, nil
}

// learn tells the slot store activity id as MySQL has it, and reports
// whether it could.
func (s *Service) learn(ctx context.Context, id int64) bool {
	a, err := s.repo.Activity(ctx, id)
	if err != nil {
		return false
	}
	s.slots.Learn(a)
	return true
}

// forget lets the slot store drop the confirmed claims of valid records.
func (s *Service) forget(ctx context.Context, valid []Participation) error {
	byActivity := map[int64][]Participation{}
	for _, p := range valid {
		byActivity[p.ActivityID] = append(byActivity[p.ActivityID], p)
	}
	for id, ps := range byActivity {
		if err := s.slots.Forget(ctx, id, ps); err != nil {
			return err
		}
	}
	return nil
}

// StoreEvents writes participation events from the event log into MySQL.
// Each is stored settled when Redis already knows what became of its claim —
// nearly always, as a join confirms its claim right after its event is
// acknowledged — and pending otherwise, for the reconcile job. When Redis
// cannot answer, every record waits as pending. It fails only when MySQL
// does, and storing the same events again changes nothing.
func (s *Service) StoreEvents(ctx context.Context, ps []Participation) error {
	outs, err := s.outcomes(ctx, ps)
	var valid []Participation
	if err == nil {
		for i, o := range outs {
			switch o {
			case OutcomeConfirmed:
				ps[i].Status = RecordValid
				valid = append(valid, ps[i])
			case OutcomeGivenBack:
				ps[i].Status = RecordVoid
			}
		}
	}
	if err := s.repo.RecordBatch(ctx, ps); err != nil {
		return err
	}
	if err := s.forget(ctx, valid); err != nil && s.logGate.Open() {
		// Only memory: the records are valid in MySQL already.
		s.log.Warn("events: dropping confirmed claims from Redis failed", "err", err)
	}
	return nil
}

// Settled counts what SettlePending did.
type Settled struct {
	Valid, Void, Pending int
}

// SettlePending settles up to limit pending records from what Redis knows of
// their claims: valid when the claim was confirmed, void when it was given
// back (or made before the state was rebuilt); records of claims still in
// flight stay pending.
func (s *Service) SettlePending(ctx context.Context, limit int) (Settled, error) {
	var n Settled
	pending, err := s.repo.PendingParticipations(ctx, limit)
	if err != nil || len(pending) == 0 {
		return n, err
	}
	outs, err := s.outcomes(ctx, pending)
	if err != nil {
		return n, err
	}
	var valid, void []Participation
	for i, o := range outs {
		switch o {
		case OutcomeConfirmed:
			valid = append(valid, pending[i])
		case OutcomeGivenBack:
			void = append(void, pending[i])
		default:
			n.Pending++
		}
	}
	if len(valid)+len(void) == 0 {
		return n, nil
	}
	if err := s.repo.SettleParticipations(ctx, valid, void); err != nil {
		return n, err
	}
	n.Valid, n.Void = len(valid), len(void)
	return n, s.forget(ctx, valid)
}
