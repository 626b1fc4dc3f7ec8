package mysql_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"seckill/activity"
	"seckill/activity/mysql"
	"seckill/internal/testenv"
)

// TestRecordedUnderConcurrency: consumers (RecordBatch) and jobs
// (SettleParticipations) settle the same pending records at once, in
// different orders, across two activities: each activity's recorded count
// must equal its valid records. A deadlock is retried by its caller; the
// count is logged.
func TestRecordedUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	db := testenv.MySQL(t)
	repo := mysql.NewRepository(db)
	var acts []*activity.Activity
	for range 2 {
		a := &activity.Activity{Name: "c", Stock: 100000, PerUserLimit: 1, State: activity.StateOpen,
			BeginAt: time.Now(), EndAt: time.Now().Add(time.Hour)}
		if err := repo.CreateActivity(ctx, a); err != nil {
			t.Fatal(err)
		}
		acts = append(acts, a)
	}
	const n = 3000
	var ps []activity.Participation
	for i := range n {
		a := acts[i%2]
		ps = append(ps, activity.Participation{Token: fmt.Sprintf("tok%051d", i), ActivityID: a.ID, Slot: int64(i + 1),
			UserID: fmt.Sprintf("u%d", i), ClaimID: fmt.Sprintf("c%015d", i), Epoch: 1, Seq: int64(i + 1), IssuedAt: time.Now()})
	}
	if err := repo.RecordBatch(ctx, ps); err != nil {
		t.Fatal(err)
	}
	var deadlocks, other atomic.Int64
	var wg sync.WaitGroup
	work := func(seed uint64, consumer bool) {
		defer wg.Done()
		r := rand.New(rand.NewPCG(seed, 1))
		for range 60 {
			k := 20 + r.IntN(200)
			batch := make([]activity.Participation, 0, k)
			var void []activity.Participation
			for range k {
				p := ps[r.IntN(n)]
				// a record is valid or void by its index: outcomes agree
				if p.Slot%7 == 0 {
					p.Status = activity.RecordVoid
					void = append(void, p)
				} else {
					p.Status = activity.RecordValid
					batch = append(batch, p)
				}
			}
			var err error
			if consumer {
				err = repo.RecordBatch(ctx, append(batch, void...))
			} else {
				err = repo.SettleParticipations(ctx, batch, void)
			}
			switch {
			case err == nil:
			case strings.Contains(err.Error(), "1213"), strings.Contains(strings.ToLower(err.Error()), "deadlock"):
				deadlocks.Add(1)
			default:
				other.Add(1)
				t.Logf("error: %v", err)
			}
		}
	}
	for i := range 4 {
		wg.Add(1)
		go work(uint64(i), i%2 == 0)
	}
	wg.Wait()
	for _, a := range acts {
		got, _ := repo.Activity(ctx, a.ID)
		c, _ := repo.CountRecorded(ctx, a.ID)
		t.Logf("activity %d: recorded %d, valid rows %d", a.ID, got.Recorded, c)
		if got.Recorded != c {
			t.Errorf("recorded drift: %d vs %d", got.Recorded, c)
		}
	}
	t.Logf("deadlocks %d, other errors %d", deadlocks.Load(), other.Load())
}

// TestRecordFreshUnderConcurrency: consumers write the same records, never
// written before, at the same time, in batches cut at other places and in
// other orders, as after a rebalance that hands a partition's events to a
// second consumer while the first still writes them; and some consumers saw
// a claim still in flight (pending) where others saw it confirmed (valid).
// Each record must be written once and counted once, valid wherever a
// consumer saw it valid: a consumer that finds a record there already must
// not count it again.
func TestRecordFreshUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	db := testenv.MySQL(t)
	repo := mysql.NewRepository(db)
	a := &activity.Activity{Name: "fresh", Stock: 100000, PerUserLimit: 1, State: activity.StateOpen,
		BeginAt: time.Now(), EndAt: time.Now().Add(time.Hour)}
	if err := repo.CreateActivity(ctx, a); err != nil {
		t.Fatal(err)
	}
	const n, size = 4000, 100
	// record i is void when i%5 == 0, in flight for everyone when i%5 == 1,
	// valid otherwise; an odd consumer saw every third valid one in flight.
	record := func(c, i int) activity.Participation {
		p := activity.Participation{Token: fmt.Sprintf("fresh%049d", i), ActivityID: a.ID, Slot: int64(i + 1),
			UserID: fmt.Sprintf("u%d", i), ClaimID: fmt.Sprintf("c%015d", i), Epoch: 1, Seq: int64(i + 1),
			IssuedAt: time.Now(), Status: activity.RecordValid}
		switch {
		case i%5 == 0:
			p.Status = activity.RecordVoid
		case i%5 == 1, c%2 == 1 && i%3 == 0:
			p.Status = "" // pending
		}
		return p
	}
	var wg sync.WaitGroup
	var deadlocks atomic.Int64
	for c := range 4 {
		wg.Go(func() {
			// Consumer c cuts its batches 7c records later than consumer 0.
			var cuts []int
			for at := 0; at < n; {
				cuts = append(cuts, at)
				at = (at+size-7*c)/size*size + 7*c
				if at <= cuts[len(cuts)-1] {
					at += size
				}
			}
			cuts = append(cuts, n)
			r := rand.New(rand.NewPCG(uint64(c), 7))
			for _, b := range r.Perm(len(cuts) - 1) {
				var batch []activity.Participation
				for i := cuts[b]; i < cuts[b+1]; i++ {
					batch = append(batch, record(c, i))
				}
				for {
					err := repo.RecordBatch(ctx, batch)
					if err == nil {
						break
					}
					if !strings.Contains(err.Error(), "1213") && !strings.Contains(strings.ToLower(err.Error()), "deadlock") {
						t.Errorf("RecordBatch: %v", err)
						return
					}
					deadlocks.Add(1) // the consumer retries a batch that failed
				}
			}
		})
	}
	wg.Wait()
	got, err := repo.Activity(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	valid, err := repo.CountRecorded(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(n * 3 / 5); got.Recorded != want || valid != want {
		t.Errorf("recorded %d, valid rows %d; want %d each", got.Recorded, valid, want)
	}
	var rows []struct {
		Status string `db:"status"`
		N      int64  `db:"n"`
	}
	if err := db.SelectContext(ctx, &rows, "SELECT status, COUNT(*) AS n FROM participations WHERE activity_id = ? GROUP BY status", a.ID); err != nil {
		t.Fatal(err)
	}
	byStatus := map[string]int64{}
	for _, r := range rows {
		byStatus[r.Status] = r.N
	}
	if want := (map[string]int64{"valid": n * 3 / 5, "pending": n / 5, "void": n / 5}); fmt.Sprint(byStatus) != fmt.Sprint(want) {
		t.Errorf("records by status %v, want %v", byStatus, want)
	}
	t.Logf("deadlocks retried: %d", deadlocks.Load())
}
