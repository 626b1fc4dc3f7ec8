package mq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"seckill/activity"
	"seckill/internal/loggate"
)

// Outbox holds the valid records not yet published to the tokens topic.
// *mysql.Repository is one.
type Outbox interface {
	// Unpublished returns up to limit valid records not yet published,
	// oldest first.
	Unpublished(ctx context.Context, limit int) ([]activity.Participation, error)
	// MarkPublished marks records published; marking one again changes
	// nothing.
	MarkPublished(ctx context.Context, tokens []string) error
}

// Leaser hands a named share of the periodic work to one instance at a
// time. *stock.Store is one.
type Leaser interface {
	// WorkLease takes or renews holder's lease on the work named name for
	// ttl and reports whether holder has it now; a ttl of zero gives it
	// back.
	WorkLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
}

// The token publisher's pace: a page of up to PublishBatch records, the
// next one at once when the page was full, PublishBusy later when it held
// records, PublishIdle later when it held none (or another instance holds
// the publishing). A token reaches the topic within about PublishIdle of its
// record turning valid.
const (
	PublishBatch = 1000
	PublishBusy  = 100 * time.Millisecond
	PublishIdle  = 500 * time.Millisecond
)

// publishLease names the publishing's lease in the Leaser.
const publishLease = "tokens"

// TokenPublisher publishes the tokens whose records are valid to the tokens
// topic, from the outbox in MySQL: it reads a page of valid records not yet
// published, produces each (acks=all, idempotent, keyed by its activity) and
// marks published only the ones the broker acknowledged. A crash, a failed
// mark or a lease that passed to another instance mid-page publishes a
// token again, never loses one: delivery is at least once, and the token is
// the message's idempotency key.
//
// Every instance runs one; the one holding the publishing's lease
// publishes, renewing it every cycle, and another takes it over when the
// holder stops renewing. While the lease cannot be asked (Redis down) every
// instance publishes: duplicates, but no token held back.
type TokenPublisher struct {
	cl      *kgo.Client
	outbox  Outbox
	lease   Leaser
	holder  string
	ttl     time.Duration
	timeout time.Duration
	log     *slog.Logger
	gate    loggate.Gate

	// Published, when set, is told how many messages the broker
	// acknowledged in each page.
	Published func(n int)
	// Waiting, when set, is told after each cycle how long ago the oldest
	// token the cycle found unpublished was issued; 0 when it found none,
	// or another instance holds the publishing.
	Waiting func(d time.Duration)
	// Failed, when set, is told of every cycle that failed.
	Failed func()

	cancel  context.CancelFunc
	running sync.WaitGroup
	once    sync.Once
}

// NewTokenPublisher connects a producer to c.TokensTopic; lease, when not
// nil, gives the publishing to one instance at a time. It fails when no
// topic is named or no broker answers.
func NewTokenPublisher(c Config, outbox Outbox, lease Leaser, log *slog.Logger) (*TokenPublisher, error) {
	if c.TokensTopic == "" {
		return nil, errors.New("kafka token publisher: no tokens topic")
	}
	timeout := c.ProduceTimeout
	if timeout <= 0 {
		timeout = DefaultProduceTimeout
	}
	cl, err := newClient(c.Brokers, c.TokensTopic, timeout)
	if err != nil {
		return nil, fmt.Errorf("kafka token publisher: %w", err)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	// The lease outlasts a page that waits the whole produce timeout, so
	// that a slow broker does not hand the same page to a second instance.
	return &TokenPublisher{cl: cl, outbox: outbox, lease: lease, holder: hex.EncodeToString(b),
		ttl: max(3*time.Second, 2*timeout), timeout: timeout, log: log}, nil
}

// Start publishes in the background until ctx ends or Stop or Close is
// called.
func (p *TokenPublisher) Start(ctx context.Context) {
	ctx, p.cancel = context.WithCancel(ctx)
	p.running.Add(1)
	go func() {
		defer p.running.Done()
		p.run(ctx)
	}()
}

func (p *TokenPublisher) run(ctx context.Context) {
	for {
		n, full, err := p.Cycle(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := PublishIdle
		switch {
		case err != nil:
			if p.Failed != nil {
				p.Failed()
			}
			if p.gate.Open() {
				p.log.Warn("publishing tokens failed; retrying", "published", n, "err", err)
			}
		case full:
			wait = 0
		case n > 0:
			wait = PublishBusy
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Cycle publishes one page of the outbox if this instance holds the
// publishing, and returns how many tokens it published and whether the
// page was full (more may be waiting). It returns an error when the outbox,
// the lease or the broker failed; the tokens not acknowledged stay in the
// outbox for the next cycle.
func (p *TokenPublisher) Cycle(ctx context.Context) (published int, full bool, err error) {
	var leaseErr error
	if p.lease != nil {
		mine, err := p.lease.WorkLease(ctx, publishLease, p.holder, p.ttl)
		if err == nil && !mine {
			p.waiting(0)
			return 0, false, nil
		}
		// An error: publish all the same, as every instance then does;
		// a duplicate is keyed by its token.
		leaseErr = err
	}
	ps, err := p.outbox.Unpublished(ctx, PublishBatch)
	if err != nil {
		return 0, false, errors.Join(leaseErr, err)
	}
	if len(ps) == 0 {
		p.waiting(0)
		return 0, false, leaseErr
	}
	oldest := ps[0].IssuedAt
	for _, part := range ps[1:] {
		if part.IssuedAt.Before(oldest) {
			oldest = part.IssuedAt
		}
	}
	p.waiting(max(time.Since(oldest), 0))
	acked, err := p.publish(ctx, ps)
	if len(acked) > 0 {
		// Marked even when ctx ended meanwhile: the broker has them, and a
		// mark left undone publishes them again.
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.timeout)
		merr := p.outbox.MarkPublished(mctx, acked)
		cancel()
		if merr != nil {
			return 0, false, errors.Join(leaseErr, err, fmt.Errorf("marking tokens published: %w", merr))
		}
		if p.Published != nil {
			p.Published(len(acked))
		}
	}
	return len(acked), len(ps) == PublishBatch, errors.Join(leaseErr, err)
}

func (p *TokenPublisher) waiting(d time.Duration) {
	if p.Waiting != nil {
		p.Waiting(d)
	}
}

// publish produces one message per record and returns the tokens the
// broker acknowledged, with the first error of the others.
func (p *TokenPublisher) publish(ctx context.Context, ps []activity.Participation) ([]string, error) {
	errs := make([]error, len(ps))
	var wg sync.WaitGroup
	for i, part := range ps {
		b, err := EncodeToken(part)
		if err != nil {
			errs[i] = err
			continue
		}
		rec := &kgo.Record{Key: strconv.AppendInt(nil, part.ActivityID, 10), Value: b,
			Headers: []kgo.RecordHeader{{Key: "schema", Value: []byte(TokenSchema)}}}
		wg.Add(1)
		p.cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			errs[i] = err
			wg.Done()
		})
	}
	wg.Wait()
	acked := make([]string, 0, len(ps))
	var first error
	for i, err := range errs {
		switch {
		case err == nil:
			acked = append(acked, ps[i].Token)
		case first == nil:
			first = err
		}
	}
	if first != nil {
		first = fmt.Errorf("kafka: %d of %d tokens not acknowledged: %w", len(ps)-len(acked), len(ps), first)
	}
	return acked, first
}

// Stop ends the background publishing and then, if this instance holds the
// publishing, publishes what the outbox still holds until it is empty or
// ctx ends, so that a stopping instance leaves nothing for the next one.
// It returns the error of the last page.
func (p *TokenPublisher) Stop(ctx context.Context) error {
	p.stopLoop()
	for ctx.Err() == nil {
		n, full, err := p.Cycle(ctx)
		if err != nil {
			return fmt.Errorf("kafka token publisher: final pages: %w", err)
		}
		if !full || n == 0 {
			return nil
		}
	}
	return nil
}

func (p *TokenPublisher) stopLoop() {
	if p.cancel != nil {
		p.cancel()
	}
	p.running.Wait()
}

// Close ends the publishing, gives the lease back for another instance to
// take at its next cycle, and closes the producer.
func (p *TokenPublisher) Close() error {
	p.once.Do(func() {
		p.stopLoop()
		if p.lease != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			// Not given back, the lease runs out by itself.
			_, _ = p.lease.WorkLease(ctx, publishLease, p.holder, 0)
			cancel()
		}
		p.cl.Close()
	})
	return nil
}
