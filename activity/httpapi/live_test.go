package httpapi_test

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"seckill/activity"
	"seckill/activity/httpapi"
	"seckill/activity/mysql"
	"seckill/internal/testenv"
)

// voidRecorder records every participation, but answers the join of user
// with an error after the record is written: the join gives its claim
// back, and its record is settled void. It keeps those tokens.
type voidRecorder struct {
	repo *mysql.Repository
	user string

	mu   sync.Mutex
	void []string
}

func (r *voidRecorder) Record(ctx context.Context, p activity.Participation) error {
	if err := r.repo.Record(ctx, p); err != nil || p.UserID != r.user {
		return err
	}
	r.mu.Lock()
	r.void = append(r.void, p.Token)
	r.mu.Unlock()
	return errors.New("the broker's answer was lost")
}

func (r *voidRecorder) tokens() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.void)
}

// newAPIWithVoid is newAPI whose joins of user "void" get no token and
// leave a void record.
func newAPIWithVoid(t *testing.T) (*api, *voidRecorder) {
	t.Helper()
	var rec *voidRecorder
	env := testenv.New(t, testenv.Options{Recorder: func(r *mysql.Repository) activity.Recorder {
		rec = &voidRecorder{repo: r, user: "void"}
		return rec
	}})
	return &api{env: env, h: httpapi.New(env.Svc, httpapi.Config{AdminToken: adminToken, Log: testenv.Logger(t)})}, rec
}

type redeemedJSON struct {
	tokenJSON
	RedeemedAt *time.Time `json:"redeemedAt"`
}

func (a *api) redeem(t *testing.T, token string) reply {
	t.Helper()
	return a.admin(t, "POST", "/api/v1/admin/tokens/"+url.PathEscape(token)+"/redeem", "")
}

func TestRedeem(t *testing.T) {
	t.Parallel()
	a, rec := newAPIWithVoid(t)
	open := a.inState(t, "open", 5, 1)
	won := decode[tokenJSON](t, a.join(t, open.ID, "u-1"), http.StatusOK)
	other := decode[tokenJSON](t, a.join(t, open.ID, "u-2"), http.StatusOK)
	wantError(t, a.join(t, open.ID, "void"), http.StatusServiceUnavailable, "unavailable", "")
	voids := rec.tokens()
	if len(voids) != 1 {
		t.Fatalf("%d void tokens, want 1", len(voids))
	}

	t.Run("OnceUnderFiftyConcurrentRedeems", func(t *testing.T) {
		// The record is still pending: every redeem settles it first.
		var wg sync.WaitGroup
		replies := make([]reply, 50)
		for i := range replies {
			wg.Go(func() { replies[i] = a.redeem(t, won.Token) })
		}
		wg.Wait()
		var ok []redeemedJSON
		var again []reply
		for _, r := range replies {
			switch r.status {
			case http.StatusOK:
				ok = append(ok, decode[redeemedJSON](t, r, http.StatusOK))
			case http.StatusConflict:
				again = append(again, r)
			default:
				t.Fatalf("redeem answered %s, want 200 or 409", r)
			}
		}
		if len(ok) != 1 {
			t.Fatalf("%d redeems answered 200, want exactly 1", len(ok))
		}
		first := ok[0]
		if first.Token != won.Token || first.UserID != "u-1" || first.Slot != won.Slot || first.RedeemedAt == nil {
			t.Fatalf("redeem answered %+v, want the participation of %s with redeemedAt", first, won.Token)
		}
		for _, r := range again {
			wantError(t, r, http.StatusConflict, "already_redeemed", "")
			e := decode[struct {
				Error struct {
					RedeemedAt time.Time `json:"redeemedAt"`
				} `json:"error"`
			}](t, r, http.StatusConflict)
			if !e.Error.RedeemedAt.Equal(*first.RedeemedAt) {
				t.Fatalf("already_redeemed says %v, want the first redeem's %v", e.Error.RedeemedAt, *first.RedeemedAt)
			}
		}
		var stored time.Time
		if err := a.env.DB.Get(&stored, "SELECT redeemed_at FROM participations WHERE token = ? AND status = 'valid'", won.Token); err != nil {
			t.Fatal(err)
		}
		if !stored.Equal(*first.RedeemedAt) {
			t.Fatalf("MySQL holds redeemed_at %v, want %v", stored, *first.RedeemedAt)
		}
		got := decode[redeemedJSON](t, a.call(t, "GET", "/api/v1/tokens/"+won.Token, ""), http.StatusOK)
		if got.RedeemedAt == nil || !got.RedeemedAt.Equal(*first.RedeemedAt) {
			t.Fatalf("GET token shows redeemedAt %v, want %v", got.RedeemedAt, first.RedeemedAt)
		}
	})

	t.Run("SettledRecord", func(t *testing.T) {
		a.env.Reconcile(t) // the record of other is valid now, and Redis forgot it
		before := decode[redeemedJSON](t, a.call(t, "GET", "/api/v1/tokens/"+other.Token, ""), http.StatusOK)
		if before.RedeemedAt != nil {
			t.Fatalf("a token never redeemed shows redeemedAt %v", before.RedeemedAt)
		}
		decode[redeemedJSON](t, a.redeem(t, other.Token), http.StatusOK)
		wantError(t, a.redeem(t, other.Token), http.StatusConflict, "already_redeemed", "")
	})

	t.Run("NotATokenToRedeem", func(t *testing.T) {
		a.env.Reconcile(t) // the void record is settled
		forged := []byte(other.Token)
		forged[len(forged)/2] ^= 1
		for name, tok := range map[string]string{
			"Void": voids[0], "Altered": string(forged), "Unknown": strings.Repeat("A", len(other.Token)),
			"Short": "abc", "Space": " ",
		} {
			t.Run(name, func(t *testing.T) {
				wantError(t, a.redeem(t, tok), http.StatusNotFound, "not_found", "")
			})
		}
		var redeemed int
		if err := a.env.DB.Get(&redeemed, "SELECT COUNT(*) FROM participations WHERE redeemed_at IS NOT NULL"); err != nil || redeemed != 2 {
			t.Fatalf("%d records redeemed (%v), want the 2 redeemed above", redeemed, err)
		}
	})

	t.Run("NeedsCredentials", func(t *testing.T) {
		third := decode[tokenJSON](t, a.join(t, open.ID, "u-3"), http.StatusOK)
		wantError(t, a.call(t, "POST", "/api/v1/admin/tokens/"+third.Token+"/redeem", ""), http.StatusUnauthorized, "unauthorized", "")
		got := decode[redeemedJSON](t, a.call(t, "GET", "/api/v1/tokens/"+third.Token, ""), http.StatusOK)
		if got.RedeemedAt != nil {
			t.Fatal("a redeem without credentials redeemed the token")
		}
	})
}

func (a *api) setStock(t *testing.T, id, stock int64) reply {
	t.Helper()
	return a.admin(t, "POST", fmt.Sprintf("/api/v1/admin/activities/%d/stock", id), fmt.Sprintf(`{"stock":%d}`, stock))
}

// joinAll joins id as fresh users until it is sold out, and returns the
// tokens answered.
func (a *api) joinAll(t *testing.T, id int64, prefix string) []tokenJSON {
	t.Helper()
	var out []tokenJSON
	for i := 0; ; i++ {
		r := a.join(t, id, fmt.Sprintf("%s-%d", prefix, i))
		if r.status == http.StatusConflict {
			wantError(t, r, http.StatusConflict, "sold_out", "")
			return out
		}
		out = append(out, decode[tokenJSON](t, r, http.StatusOK))
	}
}

func TestChangeStock(t *testing.T) {
	t.Parallel()
	a := newAPI(t)

	t.Run("RaiseAfterASellOutSellsExactlyTheAdded", func(t *testing.T) {
		t.Parallel()
		open := a.inState(t, "open", 4, 1)
		if got := len(a.joinAll(t, open.ID, "first")); got != 4 {
			t.Fatalf("%d tokens of stock 4", got)
		}
		if act := decode[activityJSON](t, a.setStock(t, open.ID, 7), http.StatusOK); act.Stock != 7 {
			t.Fatalf("stock %d after the change to 7", act.Stock)
		}
		if got := len(a.joinAll(t, open.ID, "second")); got != 3 {
			t.Fatalf("%d tokens after raising the stock by 3", got)
		}
		a.env.Reconcile(t)
		st := a.get(t, open.ID)
		if st.Stats.Issued != 7 || st.Stats.Recorded != 7 || st.Stats.Surplus != 0 {
			t.Fatalf("stats %+v, want 7 issued and recorded, surplus 0", *st.Stats)
		}
	})

	t.Run("LowerDownToTheClaimed", func(t *testing.T) {
		t.Parallel()
		open := a.inState(t, "open", 10, 1)
		for i := range 6 {
			decode[tokenJSON](t, a.join(t, open.ID, fmt.Sprintf("u-%d", i)), http.StatusOK)
		}
		r := a.setStock(t, open.ID, 5)
		wantError(t, r, http.StatusConflict, "stock_conflict", "")
		e := decode[struct {
			Error struct {
				Claimed int64 `json:"claimed"`
			} `json:"error"`
		}](t, r, http.StatusConflict)
		if e.Error.Claimed != 6 {
			t.Fatalf("stock_conflict says %d claimed, want 6", e.Error.Claimed)
		}
		if got := a.get(t, open.ID); got.Stock != 10 {
			t.Fatalf("a refused change left stock %d, want 10", got.Stock)
		}
		decode[activityJSON](t, a.setStock(t, open.ID, 6), http.StatusOK)
		wantError(t, a.join(t, open.ID, "late"), http.StatusConflict, "sold_out", "")
		a.env.Reconcile(t)
		if got := a.get(t, open.ID); got.Stock != 6 || got.Stats.Surplus != 0 {
			t.Fatalf("stock %d surplus %d, want 6 and 0", got.Stock, got.Stats.Surplus)
		}
	})

	t.Run("BeforeOpen", func(t *testing.T) {
		t.Parallel()
		for _, state := range []string{"draft", "approved"} {
			act := a.inState(t, state, 3, 1)
			decode[activityJSON](t, a.setStock(t, act.ID, 5), http.StatusOK)
			if state == "draft" {
				a.act(t, act.ID, "approve")
			}
			a.act(t, act.ID, "open")
			if got := len(a.joinAll(t, act.ID, state)); got != 5 {
				t.Fatalf("%s: %d tokens after the stock was changed to 5 before the open", state, got)
			}
		}
	})

	t.Run("RefusedOrClosed", func(t *testing.T) {
		t.Parallel()
		for _, state := range []string{"refused", "closed"} {
			act := a.inState(t, state, 3, 1)
			wantError(t, a.setStock(t, act.ID, 5), http.StatusConflict, "invalid_state", "")
			if got := a.get(t, act.ID); got.Stock != 3 {
				t.Fatalf("%s: stock %d, want 3", state, got.Stock)
			}
		}
		wantError(t, a.setStock(t, 1<<40, 5), http.StatusNotFound, "not_found", "")
	})

	t.Run("SurvivesARebuild", func(t *testing.T) {
		// Its own environment: the loss of Redis takes every key of it.
		b := newAPI(t)
		open := b.inState(t, "open", 3, 1)
		if got := len(b.joinAll(t, open.ID, "before")); got != 3 {
			t.Fatalf("%d tokens of stock 3", got)
		}
		decode[activityJSON](t, b.setStock(t, open.ID, 5), http.StatusOK)
		b.env.Reconcile(t)
		testenv.DeletePrefix(b.env.Redis, b.env.Prefix) // Redis loses the activity
		if rep := b.env.Reconcile(t); rep.Rebuilt != 1 {
			t.Fatalf("rebuilt %d, want 1", rep.Rebuilt)
		}
		if got := len(b.joinAll(t, open.ID, "after")); got != 2 {
			t.Fatalf("%d tokens after the rebuild, want the 2 added", got)
		}
		wantError(t, b.setStock(t, open.ID, 4), http.StatusConflict, "stock_conflict", "")
	})
}

// TestChangeStockDuringAStorm raises and lowers the stock of an open
// activity while a crowd joins it: every change is atomic with the claims,
// so at no moment are more tokens issued than the stock of the moment, a
// change below the slots claimed is refused, and at the end exactly the
// final stock is issued.
func TestChangeStockDuringAStorm(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	open := a.inState(t, "open", 20, 1)
	var (
		done    atomic.Bool
		mu      sync.Mutex
		tokens  []tokenJSON
		user    atomic.Int64
		crowd   sync.WaitGroup
		changes = []int64{35, 1, 60, 40, 90, 2, 120}
	)
	for range 24 {
		crowd.Go(func() {
			for {
				r := a.join(t, open.ID, fmt.Sprintf("s-%d", user.Add(1)))
				switch r.status {
				case http.StatusOK:
					tok := decode[tokenJSON](t, r, http.StatusOK)
					mu.Lock()
					tokens = append(tokens, tok)
					mu.Unlock()
				case http.StatusConflict, http.StatusServiceUnavailable:
					// sold out, or every slot in flight: wait for the next change
					if done.Load() && r.status == http.StatusConflict {
						return
					}
					time.Sleep(2 * time.Millisecond)
				default:
					t.Errorf("join answered %s", r)
					return
				}
			}
		})
	}
	// The changes begin once the crowd has claims: a lowering to 1 or 2 must
	// then be refused.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		c, _, err := a.env.Store.Counters(context.Background(), open.ID)
		if err != nil {
			t.Fatal(err)
		}
		if c.Claimed >= 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the crowd claimed %d slots in 30 s", c.Claimed)
		}
	}
	stock := int64(20)
	conflicts := 0
	for _, n := range changes {
		time.Sleep(30 * time.Millisecond)
		r := a.setStock(t, open.ID, n)
		c, _, err := a.env.Store.Counters(context.Background(), open.ID)
		if err != nil {
			t.Fatal(err)
		}
		switch r.status {
		case http.StatusOK:
			stock = n
		case http.StatusConflict:
			wantError(t, r, http.StatusConflict, "stock_conflict", "")
			conflicts++
		default:
			t.Fatalf("stock change to %d answered %s", n, r)
		}
		if c.Claimed > stock {
			t.Fatalf("%d slots claimed with stock %d", c.Claimed, stock)
		}
	}
	done.Store(true)
	crowd.Wait()
	// A join that found the activity sold out just before a raise may make
	// this instance answer sold out for up to 200 ms after it.
	time.Sleep(300 * time.Millisecond)
	tokens = append(tokens, a.joinAll(t, open.ID, "last")...)
	if stock != 120 {
		t.Fatalf("the last change (to 120) was refused")
	}
	if conflicts == 0 {
		t.Fatal("no change below the claimed slots was refused: the storm did not overlap the changes")
	}
	a.env.Reconcile(t)
	slots := map[int64]bool{}
	for _, tok := range tokens {
		if slots[tok.Slot] {
			t.Fatalf("slot %d answered twice", tok.Slot)
		}
		slots[tok.Slot] = true
	}
	got := a.get(t, open.ID)
	if len(tokens) != 120 || got.Stats.Issued != 120 || got.Stats.Recorded != 120 || got.Stats.InFlight != 0 {
		t.Fatalf("%d tokens answered, stats %+v; want exactly the final stock, 120", len(tokens), *got.Stats)
	}
}

type pageJSON struct {
	Participations []redeemedJSON `json:"participations"`
	Next           string         `json:"next"`
}

func TestExportParticipations(t *testing.T) {
	t.Parallel()
	a, _ := newAPIWithVoid(t)
	open := a.inState(t, "open", 23, 1)
	wantError(t, a.join(t, open.ID, "void"), http.StatusServiceUnavailable, "unavailable", "")
	answered := a.joinAll(t, open.ID, "w")
	if len(answered) != 23 {
		t.Fatalf("%d tokens of stock 23", len(answered))
	}
	a.env.Reconcile(t)
	decode[redeemedJSON](t, a.redeem(t, answered[4].Token), http.StatusOK)

	type record struct {
		Token      string     `db:"token"`
		Slot       int64      `db:"slot"`
		UserID     string     `db:"user_id"`
		IssuedAt   time.Time  `db:"issued_at"`
		RedeemedAt *time.Time `db:"redeemed_at"`
	}
	var want []record
	if err := a.env.DB.Select(&want, `SELECT token, slot, user_id, issued_at, redeemed_at FROM participations
		WHERE activity_id = ? AND status = 'valid' ORDER BY slot, token`, open.ID); err != nil {
		t.Fatal(err)
	}
	if len(want) != 23 {
		t.Fatalf("%d valid records, want 23", len(want))
	}
	path := fmt.Sprintf("/api/v1/admin/activities/%d/participations", open.ID)

	t.Run("JSONPages", func(t *testing.T) {
		var got []redeemedJSON
		after, pages := "", 0
		for {
			p := decode[pageJSON](t, a.admin(t, "GET", path+"?limit=7&after="+url.QueryEscape(after), ""), http.StatusOK)
			got = append(got, p.Participations...)
			pages++
			if p.Next == "" {
				break
			}
			after = p.Next
		}
		if pages != 4 || len(got) != len(want) {
			t.Fatalf("%d records in %d pages, want %d in 4", len(got), pages, len(want))
		}
		for i, w := range want {
			g := got[i]
			if g.Token != w.Token || g.Slot != w.Slot || g.UserID != w.UserID || !g.IssuedAt.Equal(w.IssuedAt) ||
				(g.RedeemedAt == nil) != (w.RedeemedAt == nil) {
				t.Fatalf("record %d is %+v, want %+v", i, g, w)
			}
		}
	})

	t.Run("CSV", func(t *testing.T) {
		r := a.admin(t, "GET", path+"?format=csv", "")
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
			t.Fatalf("CSV export answered %d %q", r.status, r.header.Get("Content-Type"))
		}
		rows, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rows[0], []string{"token", "slot", "userId", "issuedAt", "redeemedAt"}) {
			t.Fatalf("header row %v", rows[0])
		}
		rows = rows[1:]
		if len(rows) != len(want) {
			t.Fatalf("%d CSV rows, want every valid record, %d", len(rows), len(want))
		}
		for i, w := range want {
			redeemed := ""
			if w.RedeemedAt != nil {
				redeemed = w.RedeemedAt.UTC().Format(time.RFC3339Nano)
			}
			exp := []string{w.Token, strconv.FormatInt(w.Slot, 10), w.UserID, w.IssuedAt.UTC().Format(time.RFC3339Nano), redeemed}
			if !slices.Equal(rows[i], exp) {
				t.Fatalf("row %d is %v, want %v", i, rows[i], exp)
			}
		}
	})

	t.Run("NoRecordsYet", func(t *testing.T) {
		draft := a.inState(t, "draft", 3, 1)
		p := decode[pageJSON](t, a.admin(t, "GET", fmt.Sprintf("/api/v1/admin/activities/%d/participations", draft.ID), ""), http.StatusOK)
		if len(p.Participations) != 0 || p.Next != "" {
			t.Fatalf("a draft's export is %+v, want empty", p)
		}
		r := a.admin(t, "GET", fmt.Sprintf("/api/v1/admin/activities/%d/participations?format=csv", draft.ID), "")
		if r.status != http.StatusOK || string(r.body) != "token,slot,userId,issuedAt,redeemedAt\n" {
			t.Fatalf("a draft's CSV is %s, want the header row alone", r)
		}
		wantError(t, a.admin(t, "GET", "/api/v1/admin/activities/99999999/participations?format=csv", ""), http.StatusNotFound, "not_found", "")
	})
}

func TestAutoOpen(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	body := func(name string, begin, end time.Time, autoOpen bool) string {
		return fmt.Sprintf(`{"name":%q,"stock":3,"beginAt":%q,"endAt":%q,"autoOpen":%t}`,
			name, begin.UTC().Format(time.RFC3339Nano), end.UTC().Format(time.RFC3339Nano), autoOpen)
	}
	type autoJSON struct {
		activityJSON
		AutoOpen bool `json:"autoOpen"`
	}
	now := time.Now()
	manual := decode[autoJSON](t, a.admin(t, "POST", "/api/v1/admin/activities", body("manual", now.Add(-time.Minute), now.Add(time.Hour), false)), http.StatusCreated)
	over := decode[autoJSON](t, a.admin(t, "POST", "/api/v1/admin/activities", body("over", now.Add(-2*time.Hour), now.Add(-time.Hour), true)), http.StatusCreated)
	if manual.AutoOpen || !over.AutoOpen {
		t.Fatalf("autoOpen %v and %v, want false and true", manual.AutoOpen, over.AutoOpen)
	}
	if dflt := a.create(t, activityBody("default", 3, 1)); decode[autoJSON](t, a.admin(t, "GET", fmt.Sprintf("/api/v1/admin/activities/%d", dflt.ID), ""), http.StatusOK).AutoOpen {
		t.Fatal("autoOpen is true by default")
	}
	for _, act := range []autoJSON{manual, over} {
		a.act(t, act.ID, "approve")
	}

	t.Run("ApprovedTakesAutoOpenAlone", func(t *testing.T) {
		path := fmt.Sprintf("/api/v1/admin/activities/%d", manual.ID)
		wantError(t, a.admin(t, "PATCH", path, `{"name":"renamed"}`), http.StatusConflict, "invalid_state", "")
		wantError(t, a.admin(t, "PATCH", path, `{"autoOpen":true,"stock":9}`), http.StatusConflict, "invalid_state", "")
		on := decode[autoJSON](t, a.admin(t, "PATCH", path, `{"autoOpen":true}`), http.StatusOK)
		off := decode[autoJSON](t, a.admin(t, "PATCH", path, `{"autoOpen":false}`), http.StatusOK)
		if !on.AutoOpen || off.AutoOpen || off.State != "approved" || off.Name != "manual" {
			t.Fatalf("after the patches: %+v then %+v", on, off)
		}
		open := a.inState(t, "open", 3, 1)
		wantError(t, a.admin(t, "PATCH", fmt.Sprintf("/api/v1/admin/activities/%d", open.ID), `{"autoOpen":true}`),
			http.StatusConflict, "invalid_state", "")
	})

	t.Run("OpensItselfWhenBeginAtComes", func(t *testing.T) {
		begin := time.Now().Add(2 * time.Second).Truncate(time.Millisecond)
		sched := decode[autoJSON](t, a.admin(t, "POST", "/api/v1/admin/activities", body("scheduled", begin, begin.Add(time.Hour), true)), http.StatusCreated)
		if !sched.AutoOpen {
			t.Fatal("autoOpen false on a create with autoOpen true")
		}
		a.act(t, sched.ID, "approve")
		var first time.Time
		notOpen := 0
		for deadline := begin.Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if _, err := a.env.Job.Cycle(context.Background()); err != nil {
				t.Fatal(err)
			}
			asked := time.Now()
			r := a.join(t, sched.ID, "early-bird")
			if r.status == http.StatusOK {
				first = asked
				break
			}
			wantError(t, r, http.StatusConflict, "not_open", "")
			notOpen++
		}
		switch {
		case notOpen == 0:
			t.Fatal("no join was answered not_open before beginAt: the test did not see the wait")
		case first.IsZero():
			t.Fatalf("no join succeeded within 5 s after beginAt (%v)", begin)
		case first.Before(begin.Add(-50 * time.Millisecond)):
			t.Fatalf("a join succeeded at %v, before beginAt %v", first, begin)
		}
		if st := a.get(t, sched.ID).State; st != "open" {
			t.Fatalf("state %s, want open", st)
		}
		for _, id := range []int64{manual.ID, over.ID} {
			if st := a.get(t, id).State; st != "approved" {
				t.Fatalf("activity %d is %s, want approved: no autoOpen, or its window is over", id, st)
			}
		}
	})
}

// pagedService is a Service whose export hands out pages slowly.
type pagedService struct {
	fakeService
	pages int
	delay time.Duration
}

func (f *pagedService) Participations(_ context.Context, id int64, after string, _ int) (*activity.ExportPage, error) {
	n := 0
	if after != "" {
		n, _ = strconv.Atoi(after)
	}
	time.Sleep(f.delay)
	page := &activity.ExportPage{}
	for i := range 3 {
		slot := int64(n*3 + i + 1)
		page.Participations = append(page.Participations, activity.Participation{Token: fmt.Sprintf("t%d", slot),
			ActivityID: id, Slot: slot, UserID: "u", IssuedAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)})
	}
	if n+1 < f.pages {
		page.Next = strconv.Itoa(n + 1)
	}
	return page, nil
}

// TestExportOutlivesTheWriteTimeout: the CSV of a large sale takes longer
// than the server's write timeout allows one answer; each page moves the
// deadline on, so the file arrives whole.
func TestExportOutlivesTheWriteTimeout(t *testing.T) {
	t.Parallel()
	fake := &pagedService{pages: 8, delay: 100 * time.Millisecond}
	h := httpapi.New(fake, httpapi.Config{AdminToken: adminToken, Log: testenv.Logger(t)})
	srv := httptest.NewUnstartedServer(h)
	srv.Config.WriteTimeout = 300 * time.Millisecond // the whole export takes 800 ms
	srv.Start()
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/admin/activities/7/participations?format=csv", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil || len(rows) != 1+8*3 {
		t.Fatalf("%d rows (%v), want the header and 24", len(rows), err)
	}
	if rows[24][0] != "t24" {
		t.Fatalf("last row %v, want t24's", rows[24])
	}
}
