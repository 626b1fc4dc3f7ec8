package baselines

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"

	"github.com/redis/go-redis/v9"

	"seckill/loadtest/load"
)

// unlockScript is the compare-and-delete release of seeds 000, 003 and 004
// (and redsync): only the holder, who knows the random value, deletes the
// lock.
//
// KEYS[1] the lock; ARGV[1] the holder's value. Returns 1 when deleted, 0
// when the lock was not (any more) the caller's.
var unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0`)

// redisLock is design (d), seed 004's redsync flow: one lock for the whole
// activity (SET key value NX PX expiry, a random value), tried up to
// LockTries times with a random delay between tries, then the MySQL work,
// then the compare-and-delete release. Inside the lock the stock is taken
// with the conditional UPDATE rather than seed 004's SELECT then UPDATE: one
// round trip less while the lock is held, and still no oversell should the
// lock expire mid-way.
func (s *Server) redisLock(ctx context.Context, id int64, user string) (int64, error) {
	key := s.prefix + ":{" + strconv.FormatInt(id, 10) + "}:lock"
	var b [16]byte
	_, _ = rand.Read(b[:])
	value := hex.EncodeToString(b[:])
	locked := false
	for try := range s.opt.LockTries {
		if try > 0 {
			if err := load.Sleep(ctx, jitter(s.opt.LockRetryDelay)); err != nil {
				return 0, err
			}
		}
		ok, err := s.rdb.SetNX(ctx, key, value, s.opt.LockExpiry).Result()
		if err != nil {
			return 0, err
		}
		if ok {
			locked = true
			break
		}
	}
	if !locked {
		return 0, errBusy
	}
	// Released with a context of its own: a client that hung up must not
	// leave the lock to its expiry.
	defer unlockScript.Run(context.WithoutCancel(ctx), s.rdb, []string{key}, value)
	return s.conditional(ctx, id, user)
}
