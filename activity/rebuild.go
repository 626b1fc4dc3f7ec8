package activity

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Decision settles the pending records of an epoch whose Redis state was
// lost: the tokens to mark valid and void.
type Decision struct {
	Valid, Void []string
}

// DecideLost settles the pending records of an epoch whose Redis state was
// lost, from the records alone. records holds every record of that epoch,
// whatever its status (a void or valid record tells about the others too).
//
// A pending record's claim may have been confirmed and its join answered
// 200, or given back and its join answered 503: Redis, which knew, has
// forgotten. The rules keep every record whose claim may have been
// confirmed, and void only those that were given back for certain:
//
//   - Slot: the claims of a slot follow one another, each given back before
//     the next took the slot, and a confirmed slot is never claimed again.
//     So only the claim with the highest sequence number of a slot can have
//     been confirmed; and none of the pending ones can when a record of the
//     slot is valid. The sequence numbers of a slot's claims go up as the
//     number moves from shard to shard (receive.lua) and past a shard's
//     earlier epoch when the shard alone is rebuilt (Store.RebuildShard);
//     records holds no record of an earlier epoch of its shard but valid
//     ones, whose claims are not ordered with those made since.
//   - User: a record lists the claims of the epoch its user held when it was
//     made (held from the claim until given back; a confirmed claim for
//     good). A claim missing from the list of a later claim of the same user
//     had been given back by then.
//
// Every other pending record is in doubt and counted valid: its slot may
// stay sold to a join that answered 503, which strands it, but a token
// answered 200 is never voided. Nor can that oversell: at most one record
// per slot stays valid, and a user's surviving records are the last one
// and some of those it held, which the per-user limit bounded when it was
// claimed.
func DecideLost(records []Participation) Decision {
	type userKey struct {
		epoch int64
		user  string
	}
	seen := map[string]bool{}
	bySlot := map[int64][]*Participation{}
	byUser := map[userKey][]*Participation{}
	for i := range records {
		p := &records[i]
		if seen[p.Token] {
			continue
		}
		seen[p.Token] = true
		bySlot[p.Slot] = append(bySlot[p.Slot], p)
		byUser[userKey{p.Epoch, p.UserID}] = append(byUser[userKey{p.Epoch, p.UserID}], p)
	}
	void := map[string]bool{}
	for _, ps := range bySlot {
		// The last claim of the slot; records made before claims were
		// numbered (sequence 0) are told apart by their issue time.
		last := slices.MaxFunc(ps, func(a, b *Participation) int {
			if a.Seq != b.Seq {
				return cmp.Compare(a.Seq, b.Seq)
			}
			return a.IssuedAt.Compare(b.IssuedAt)
		})
		valid := slices.ContainsFunc(ps, func(p *Participation) bool { return p.Status == RecordValid })
		for _, p := range ps {
			if p.Status == RecordPending && (valid || p != last) {
				void[p.Token] = true
			}
		}
	}
	for _, ps := range byUser {
		last := slices.MaxFunc(ps, func(a, b *Participation) int { return cmp.Compare(a.Seq, b.Seq) })
		if last.Seq == 0 {
			continue // not numbered: nothing to read
		}
		for _, p := range ps {
			// Held from its claim until given back: held by the last
			// claim, or given back before it.
			if p.Status == RecordPending && p.Seq < last.Seq && !slices.Contains(last.Held, p.Seq) {
				void[p.Token] = true
			}
		}
	}
	var d Decision
	for _, p := range records {
		if p.Status != RecordPending || !seen[p.Token] {
			continue
		}
		delete(seen, p.Token)
		if void[p.Token] {
			d.Void = append(d.Void, p.Token)
		} else {
			d.Valid = append(d.Valid, p.Token)
		}
	}
	return d
}

// FormatSeqs writes claim sequence numbers as the adapters keep them,
// "7 12"; ParseSeqs reads them back, skipping anything else.
func FormatSeqs(seqs []int64) string {
	b := make([]byte, 0, 8*len(seqs))
	for i, n := range seqs {
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendInt(b, n, 10)
	}
	return string(b)
}

// ParseSeqs reads claim sequence numbers written by FormatSeqs.
func ParseSeqs(s string) []int64 {
	var out []int64
	for _, f := range strings.Fields(s) {
		if n, err := strconv.ParseInt(f, 10, 64); err == nil {
			out = append(out, n)
		}
	}
	return out
}
