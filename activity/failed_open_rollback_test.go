package activity_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"seckill/activity"
	"seckill/activity/mysql"
	"seckill/internal/testenv"
	"seckill/stock"
)

// lostReplyNoRollbackSlots: the first Preheat lands but its reply is lost,
// and MySQL refuses the move back to approved that follows (a trigger
// stands for MySQL not answering at that moment).
type lostReplyNoRollbackSlots struct {
	*stock.Store
	db   *sqlx.DB
	once sync.Once
}

func (s *lostReplyNoRollbackSlots) Preheat(ctx context.Context, a *activity.Activity) error {
	err := s.Store.Preheat(ctx, a)
	lost := false
	s.once.Do(func() { lost = true })
	if err == nil && lost {
		if _, terr := s.db.ExecContext(ctx, `CREATE TRIGGER no_undo BEFORE UPDATE ON activities FOR EACH ROW
			BEGIN IF OLD.state = 'open' AND NEW.state = 'approved' THEN
			SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'mysql down'; END IF; END`); terr != nil {
			return terr
		}
		return activity.Unavailable("redis", errors.New("preheat: i/o timeout"))
	}
	return err
}

// An open whose preheat lands (reply lost) and whose move back to approved
// fails leaves MySQL saying open: Redis is left open too (the failed open
// closes it only once MySQL moved back), so the sale goes on and sells its
// stock.
func TestFailedOpenWhoseRollbackFailsKeepsSelling(t *testing.T) {
	ctx := context.Background()
	q := &queueRecorder{}
	w := &lostReplyNoRollbackSlots{}
	env := testenv.New(t, testenv.Options{
		Slots:    func(s *stock.Store) activity.SlotStore { w.Store = s; return w },
		Recorder: func(*mysql.Repository) activity.Recorder { return q },
	})
	db := env.DB
	w.db = db
	t.Cleanup(func() { db.Exec(`DROP TRIGGER IF EXISTS no_undo`) })
	begin, end := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	name, stockN, limit := "x", int64(3), int64(1)
	a, err := env.Svc.Create(ctx, activity.Fields{Name: &name, Stock: &stockN, PerUserLimit: &limit, BeginAt: &begin, EndAt: &end})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionApprove); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionOpen); err == nil {
		t.Fatal("the open with its reply lost succeeded")
	}
	if _, err := db.Exec(`DROP TRIGGER IF EXISTS no_undo`); err != nil {
		t.Fatal(err)
	}
	got, _ := env.Svc.Get(ctx, a.ID)
	if got.State != activity.StateOpen {
		t.Skipf("the move back took: %s", got.State)
	}
	tokens := 0
	var last error
	for i := range 10 {
		if _, err := env.Svc.Join(ctx, a.ID, fmt.Sprintf("u%d", i), ""); err == nil {
			tokens++
		} else {
			last = err
		}
	}
	env.Reconcile(t)
	for i := range 10 {
		if _, err := env.Svc.Join(ctx, a.ID, fmt.Sprintf("v%d", i), ""); err == nil {
			tokens++
		} else {
			last = err
		}
	}
	if _, err := env.Svc.Transition(ctx, a.ID, activity.ActionOpen); err == nil {
		t.Log("open again accepted")
	} else {
		t.Logf("open again: %v", err)
	}
	if int64(tokens) != stockN {
		t.Errorf("MySQL says %s; %d tokens of a stock of %d after 20 joins (last: %v)", got.State, tokens, stockN, last)
	}
}
