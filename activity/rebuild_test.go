package activity

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// rec is a record of epoch 1 for the DecideLost tables.
func rec(token string, slot int64, user string, seq int64, status RecordStatus, held ...int64) Participation {
	return Participation{Token: token, Slot: slot, UserID: user, Epoch: 1, Seq: seq, Held: held, Status: status,
		IssuedAt: time.UnixMilli(seq)}
}

func TestDecideLost(t *testing.T) {
	const (
		pending = RecordPending
		valid   = RecordValid
		void    = RecordVoid
	)
	for _, tc := range []struct {
		name        string
		records     []Participation
		valid, void []string
	}{{
		// Stock 3, limit 1: ghost's first event was acknowledged late, the
		// join answered 503 and gave slot 1 back; ghost's retry got slot 1;
		// alice and bob joined. Only the retry can have been confirmed.
		name: "GhostGivenBackThenRetried",
		records: []Participation{
			rec("ghost1", 1, "ghost", 1, pending),
			rec("ghost2", 1, "ghost", 2, pending),
			rec("alice", 2, "alice", 3, pending),
			rec("bob", 3, "bob", 4, pending),
		},
		valid: []string{"ghost2", "alice", "bob"},
		void:  []string{"ghost1"},
	}, {
		// The retry took another slot: the slot rule cannot tell, the user
		// rule can (the retry held nothing when it was claimed).
		name: "RetryOnAnotherSlot",
		records: []Participation{
			rec("first", 3, "u", 5, pending),
			rec("retry", 4, "u", 9, pending),
		},
		valid: []string{"retry"},
		void:  []string{"first"},
	}, {
		// Limit 2: the second claim was made while the first was held, so
		// both may have been confirmed.
		name: "HeldByTheLaterClaim",
		records: []Participation{
			rec("first", 3, "u", 5, pending),
			rec("second", 4, "u", 9, pending, 5),
		},
		valid: []string{"first", "second"},
	}, {
		name: "ValidRecordOfTheSlot",
		records: []Participation{
			rec("a", 1, "a", 1, pending),
			rec("b", 1, "b", 2, valid),
		},
		void: []string{"a"},
	}, {
		// A later void record of the slot still says the slot was claimed
		// again, so the earlier claim had been given back.
		name: "LaterVoidRecordOfTheSlot",
		records: []Participation{
			rec("a", 1, "a", 1, pending),
			rec("b", 1, "b", 2, void),
		},
		void: []string{"a"},
	}, {
		// The last claim of a slot, with nothing after it: in doubt, kept.
		name: "InDoubt",
		records: []Participation{
			rec("a", 1, "a", 1, pending),
		},
		valid: []string{"a"},
	}, {
		name: "RedeliveredRecord",
		records: []Participation{
			rec("a", 1, "a", 1, pending),
			rec("a", 1, "a", 1, pending),
		},
		valid: []string{"a"},
	}, {
		// Records from before claims were numbered: the later issue time
		// of a slot wins, so a slot keeps one token.
		name: "Unnumbered",
		records: []Participation{
			{Token: "old", Slot: 1, UserID: "x", Epoch: 1, Status: pending, IssuedAt: time.UnixMilli(1)},
			{Token: "new", Slot: 1, UserID: "y", Epoch: 1, Status: pending, IssuedAt: time.UnixMilli(2)},
		},
		valid: []string{"new"},
		void:  []string{"old"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			d := DecideLost(tc.records)
			slices.Sort(d.Valid)
			slices.Sort(d.Void)
			slices.Sort(tc.valid)
			slices.Sort(tc.void)
			if !slices.Equal(d.Valid, tc.valid) || !slices.Equal(d.Void, tc.void) {
				t.Fatalf("valid %v void %v, want valid %v void %v", d.Valid, d.Void, tc.valid, tc.void)
			}
		})
	}
}

// TestDecideLostRandomHistories plays random sales of one epoch — claims,
// events that did or did not reach the log, confirms, give-backs, claims
// left in flight by a crash, records the consumer had already settled —
// and checks DecideLost on what MySQL would hold: no confirmed claim voided,
// at most one token per slot, at most stock tokens, nobody over the limit.
func TestDecideLostRandomHistories(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for run := range 20000 {
		stock := 1 + rnd.IntN(4)
		limit := 1 + rnd.IntN(3)
		users := []string{"a", "b", "c"}[:1+rnd.IntN(3)]
		type claim struct {
			slot      int64
			user      string
			seq       int64
			held      []int64
			recorded  bool
			confirmed bool
			done      bool
		}
		// Tokens of earlier epochs: their slots are issued, their users
		// hold them.
		prior := map[string]int{}
		taken := map[int64]bool{}
		priorSlots := map[int64]bool{}
		for _, u := range users {
			if rnd.IntN(4) == 0 && len(taken) < stock {
				prior[u] = 1
				taken[int64(len(taken)+1)] = true
				priorSlots[int64(len(taken))] = true
			}
		}
		var claims []*claim
		holds := func(u string) (n int, seqs []int64) {
			for _, c := range claims {
				if c.user == u && (!c.done || c.confirmed) {
					n++
					seqs = append(seqs, c.seq)
				}
			}
			return n + prior[u], seqs
		}
		for range 4 + rnd.IntN(12) {
			var open []*claim
			for _, c := range claims {
				if !c.done {
					open = append(open, c)
				}
			}
			if len(open) > 0 && rnd.IntN(2) == 0 {
				c := open[rnd.IntN(len(open))]
				c.done = true
				// A join confirms only after its event was acknowledged.
				c.confirmed = c.recorded && rnd.IntN(2) == 0
				if !c.confirmed {
					delete(taken, c.slot)
				}
				continue
			}
			u := users[rnd.IntN(len(users))]
			n, seqs := holds(u)
			var free []int64
			for s := int64(1); s <= int64(stock); s++ {
				if !taken[s] {
					free = append(free, s)
				}
			}
			if n >= limit || len(free) == 0 {
				continue
			}
			c := &claim{slot: free[rnd.IntN(len(free))], user: u, seq: int64(len(claims) + 1), held: seqs,
				recorded: rnd.IntN(4) != 0}
			taken[c.slot] = true
			claims = append(claims, c)
		}
		var records []Participation
		for _, c := range claims {
			if !c.recorded {
				continue
			}
			p := Participation{Token: string(rune('A' + c.seq)), Slot: c.slot, UserID: c.user, Epoch: 1, Seq: c.seq,
				Held: c.held, Status: RecordPending}
			// The consumer settled some records while Redis still knew.
			if c.done && rnd.IntN(3) == 0 {
				p.Status = RecordVoid
				if c.confirmed {
					p.Status = RecordValid
				}
			}
			records = append(records, p)
		}
		d := DecideLost(records)
		validTokens := map[string]bool{}
		for _, tok := range d.Valid {
			validTokens[tok] = true
		}
		slots := map[int64]bool{}
		perUser := map[string]int{}
		count := 0
		for u, n := range prior {
			perUser[u] += n
			count += n
		}
		for _, p := range records {
			isValid := p.Status == RecordValid || validTokens[p.Token]
			c := claims[p.Seq-1]
			if c.confirmed && !isValid {
				t.Fatalf("run %d: confirmed claim %+v voided (records %+v, decision %+v)", run, c, records, d)
			}
			if !isValid {
				continue
			}
			if slots[p.Slot] || priorSlots[p.Slot] {
				t.Fatalf("run %d: two tokens on slot %d (records %+v, decision %+v)", run, p.Slot, records, d)
			}
			slots[p.Slot] = true
			perUser[p.UserID]++
			count++
			if perUser[p.UserID] > limit {
				t.Fatalf("run %d: user %s over the limit %d (records %+v, decision %+v)", run, p.UserID, limit, records, d)
			}
		}
		if count > stock {
			t.Fatalf("run %d: %d tokens for stock %d", run, count, stock)
		}
	}
}

// TestSeqsRoundTrip: sequence numbers are written space-separated and read
// back, anything that is not a number skipped.
func TestSeqsRoundTrip(t *testing.T) {
	if got := FormatSeqs([]int64{7, 12, 3}); got != "7 12 3" {
		t.Fatalf("FormatSeqs = %q, want \"7 12 3\"", got)
	}
	if got := FormatSeqs(nil); got != "" {
		t.Fatalf("FormatSeqs(nil) = %q", got)
	}
	if got := ParseSeqs(" 7 x 12  3"); !slices.Equal(got, []int64{7, 12, 3}) {
		t.Fatalf("ParseSeqs = %v, want [7 12 3]", got)
	}
}
