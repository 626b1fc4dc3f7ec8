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
