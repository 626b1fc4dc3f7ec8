package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	gomysql "github.com/go-sql-driver/mysql"

	"seckill/activity"
	"seckill/internal/testenv"
	"seckill/mq"
)

// readWholeTopic reads every message of a topic, from the start of each
// partition to its end as it is now.
func readWholeTopic(t *testing.T, brokers []string, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Version = mq.ProtocolVersion()
	client, err := sarama.NewClient(brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []*sarama.ConsumerMessage
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if end == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		timeout := time.After(30 * time.Second)
		for done := false; !done; {
			select {
			case m := <-pc.Messages():
				out = append(out, m)
				done = m.Offset >= end-1
			case err := <-pc.Errors():
				t.Fatalf("read %s/%d: %v", topic, p, err)
			case <-timeout:
				t.Fatalf("read %s/%d: not at its end %d within 30s", topic, p, end)
			}
		}
		pc.Close()
	}
	return out
}

// lateJoins plays joins that failed after their event was acknowledged:
// n claims whose events reach the topic, the first half given back at once
// (the join's confirm failed), the others left to their lease (the process
// died). Their records are settled void; the tokens are returned.
func lateJoins(t *testing.T, app *App, id int64, prefix string, n int) []string {
	t.Helper()
	ctx := context.Background()
	secret := make([]byte, 32)
	forger, _ := activity.NewSigner(secret)
	var out []string
	for i := range n {
		user := fmt.Sprintf("%s%d", prefix, i)
		var nonce [12]byte
		copy(nonce[:], user)
		c := activity.Claim{ActivityID: id, UserID: user, ClaimID: base64.RawURLEncoding.EncodeToString(nonce[:])}
		if err := app.Store.Claim(ctx, &c); err != nil {
			t.Fatalf("claim of %s: %v", user, err)
		}
		p := activity.Participation{Token: forger.Sign(id, c.Slot, nonce), ActivityID: id, Slot: c.Slot, UserID: user,
			ClaimID: c.ClaimID, Epoch: c.Epoch, Seq: c.Seq, Held: c.Held, IssuedAt: time.Now().UTC()}
		if err := app.producer.Record(ctx, p); err != nil {
			t.Fatalf("event of %s: %v", user, err)
		}
		if i < n/2 {
			if err := app.Store.Release(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, p.Token)
	}
	return out
}

type tokenRow struct {
	Token      string    `db:"token"`
	ActivityID int64     `db:"activity_id"`
	Slot       int64     `db:"slot"`
	UserID     string    `db:"user_id"`
	Epoch      int64     `db:"epoch"`
	IssuedAt   time.Time `db:"issued_at"`
	Status     string    `db:"status"`
}

// settledRows waits until the activity has want records, none pending and
// every valid one published, and returns them.
func settledRows(t *testing.T, app *App, id int64, want int) map[string]tokenRow {
	t.Helper()
	eventually(t, 30*time.Second, "every record there and settled, every valid one published", func() bool {
		var n struct {
			All     int `db:"n"`
			Waiting int `db:"waiting"`
		}
		err := app.db.Get(&n, `SELECT COUNT(*) AS n,
			COALESCE(SUM(status = 'pending' OR status = 'valid' AND published = 0), 0) AS waiting
			FROM participations WHERE activity_id = ?`, id)
		return err == nil && n.All == want && n.Waiting == 0
	})
	var rows []tokenRow
	if err := app.db.Select(&rows, `SELECT token, activity_id, slot, user_id, epoch, issued_at, status
		FROM participations WHERE activity_id = ?`, id); err != nil {
		t.Fatal(err)
	}
	out := map[string]tokenRow{}
	for _, r := range rows {
		out[r.Token] = r
	}
	return out
}

// TestTokensTopic: every token whose record is valid reaches the tokens
// topic at least once, keyed by its activity, as the documented message
// with the fields of its record, and no void one ever does, across a
// restart of the service after which the consumer reads every event again
// and the publisher finds tokens the broker had but MySQL had not marked.
func TestTokensTopic(t *testing.T) {
	b := newBroker(t)
	cfg := kafkaConfig(t, b)
	cfg.Lease = 300 * time.Millisecond
	app := startApp(t, cfg)
	id := openActivity(t, app, 80, 1)

	answered := tokens(t, crowd(app.URL(), id, users("first", 30), 30))
	void := lateJoins(t, app, id, "dead-a", 6)
	if len(answered) != 30 {
		t.Fatalf("%d tokens, want 30", len(answered))
	}
	settledRows(t, app, id, 36)
	shutdown(t, app)

	// The consumer's committed offsets gone: the restarted consumer reads
	// every event again. And a few tokens the broker acknowledged that
	// MySQL does not know were published (a crash before the mark).
	admin, err := sarama.NewClusterAdmin([]string{b.addr()}, func() *sarama.Config {
		sc := sarama.NewConfig()
		sc.Version = mq.ProtocolVersion()
		return sc
	}())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.DeleteConsumerGroup("seckill"); err != nil {
		t.Fatalf("delete the consumer group: %v", err)
	}
	dsn, err := gomysql.ParseDSN(cfg.MySQLDSN)
	if err != nil {
		t.Fatal(err)
	}
	db := testenv.MySQLAt(t, cfg.MySQLDSN, dsn.Addr)
	var again []string
	if err := db.Select(&again, `SELECT token FROM participations WHERE activity_id = ? AND status = 'valid'
		ORDER BY token LIMIT 5`, id); err != nil {
		t.Fatal(err)
	}
	if len(again) != 5 {
		t.Fatalf("%d valid records to publish again, want 5", len(again))
	}
	if _, err := db.Exec(`UPDATE participations SET published = 0 WHERE activity_id = ? AND status = 'valid'
		ORDER BY token LIMIT 5`, id); err != nil {
		t.Fatal(err)
	}

	app = startApp(t, cfg)
	for tok, a := range tokens(t, crowd(app.URL(), id, users("second", 30), 30)) {
		answered[tok] = a
	}
	void = append(void, lateJoins(t, app, id, "dead-b", 6)...)
	if len(answered) != 60 {
		t.Fatalf("%d tokens, want 60", len(answered))
	}
	converged(t, app, id, 80, 60)
	rows := settledRows(t, app, id, 72)

	msgs := readWholeTopic(t, []string{b.addr()}, cfg.TokensTopic)
	seen := map[string]int{}
	for _, m := range msgs {
		tm, err := mq.DecodeToken(m.Value)
		if err != nil {
			t.Fatalf("message %d/%d is not of the schema: %v: %s", m.Partition, m.Offset, err, m.Value)
		}
		if string(m.Key) != strconv.FormatInt(tm.ActivityID, 10) {
			t.Errorf("token %s of activity %d keyed %q", tm.Token, tm.ActivityID, m.Key)
		}
		seen[tm.Token]++
		r, ok := rows[tm.Token]
		switch {
		case !ok:
			t.Errorf("token %s published, but MySQL has no record of it", tm.Token)
		case r.Status != string(activity.RecordValid):
			t.Errorf("token %s published, its record is %s", tm.Token, r.Status)
		case tm.ActivityID != r.ActivityID || tm.Slot != r.Slot || tm.UserID != r.UserID || tm.Epoch != r.Epoch ||
			!tm.IssuedAt.Equal(r.IssuedAt):
			t.Errorf("message %+v does not match its record %+v", tm, r)
		}
	}
	valid := 0
	for tok, r := range rows {
		if r.Status == string(activity.RecordValid) {
			valid++
			if seen[tok] == 0 {
				t.Errorf("valid token %s (user %s) never published", tok, r.UserID)
			}
		}
	}
	if valid != 60 {
		t.Errorf("%d valid records, want the 60 tokens answered", valid)
	}
	for tok := range answered {
		if seen[tok] == 0 {
			t.Errorf("token %s answered 200, not published", tok)
		}
	}
	for _, tok := range void {
		if r := rows[tok]; r.Status != string(activity.RecordVoid) {
			t.Errorf("the late join's record %s is %q, want void", tok, r.Status)
		}
		if seen[tok] > 0 {
			t.Errorf("void token %s published", tok)
		}
	}
	for _, tok := range again {
		if seen[tok] < 2 {
			t.Errorf("token %s, not marked published, was published %d times, want again", tok, seen[tok])
		}
	}
	t.Logf("%d messages for %d valid tokens, %d void tokens not published", len(msgs), valid, len(void))

	body := scrape(t, app.URL())
	// The second instance published the second half and the five again.
	if n := metricValue(body, "seckill_tokens_published_total"); n < 35 {
		t.Errorf("seckill_tokens_published_total %v, want at least 35", n)
	}
	// The restarted consumer read every event again, the first instance's
	// too.
	if n := metricValue(body, "seckill_records_written_total"); n < 72 {
		t.Errorf("seckill_records_written_total %v, want at least the 72 events: were they delivered again?", n)
	}
}
