/*
 * protocol.pml: the slot protocol of one activity as rebuilt in issue 10 (the
 * run_id fence, the claim seq and held list, the rebuild's decision rule), as
 * a Promela model. spin searches every interleaving of two users' joins, the
 * Kafka producer, the consumer, the job (settle, reap, rebuild), lock expiry
 * and a Redis loss for
 *   - an oversell: more tokens held than stock,
 *   - two tokens held on one slot (over all epochs),
 *   - a user holding more tokens than the per-user limit,
 *   - a token answered 200 that is settled void, or that ends with no
 *     record (lost).
 * "run_id" in the model is the identity of the Redis master history that
 * fence.lua reads: the master's replication ID (master_replid), new on every
 * start and every promotion.
 * A token is held when its join answered 200 (ok[j]) or its record is valid
 * in MySQL. The checks (inv) run after every step that changes either, and
 * once more when everything is over (Final).
 *
 * Run (stock/protocol_test.go, TestProtocolModel, does this in make test):
 *   spin -a stock/protocol.pml && gcc -O2 -DSAFETY -o pan pan.c && ./pan -m100000
 * Variants are -D flags to spin (spin -DOLD_REBUILD -a stock/protocol.pml):
 *   OLD_REBUILD      the rebuild before issue 10: every pending record of an
 *                    earlier epoch is settled valid. spin finds the ghost
 *                    oversell: two valid records on one slot.
 *   RULE_ALL_EPOCHS  rules (a) and (b) for pending records of every earlier
 *                    epoch, instead of voiding those of epochs before the one
 *                    that ends (finds an oversell with MAXLOSS=2).
 *   STAMP_LATE       the rebuild's last Redis step (preheat.lua) stamps
 *                    meta.runid with the run_id of the Redis it runs on, not
 *                    the one its clear ran on (finds one with MAXLOSS=2).
 *   NO_FENCE         scripts look only for the meta hash, not meta.runid
 *                    (finds a 200 settled void; needs about a minute).
 *   TWO_REBUILDERS   two job instances, and the rebuild lock may expire under
 *                    a rebuild that stalls (finds a 200 settled void).
 *   REBUILD_TOKEN    the rebuild fenced by a token (see Rebuild): no
 *                    violation, also with TWO_REBUILDERS.
 *   MAXLOSS=n        how often Redis may lose its state (default 1).
 *   RCRASH=n         how many rebuilds may die after their transaction
 *                    (default 0).
 *   PARTIAL          also a loss of the last writes in the short form (see
 *                    Loss); FULL_SNAPSHOT the long form (slow).
 *   LIMIT2           one user, limit 2, stock 3: J0 and J1 at once, J2 after
 *                    J0 (a subset of the interleavings, but held lists with
 *                    more than one word).
 *   NORETRY          no J1: a smaller search (for TWO_REBUILDERS).
 *
 * Scale: stock 2, per-user limit 1, three join attempts: J0 and then J1 by
 * user 0 ("ghost": a request and its retry), J2 by user 1 ("alice"). A join
 * claims at most once, so the join index names its claim, its event and its
 * record. Slots are 0..STOCK-1 here (1..stock in Redis). In the trail: rec 0
 * none, 1 pending, 2 valid, 3 void; settle answers 0 unknown, 1 in flight,
 * 2 confirmed, 3 given back.
 *
 * What stands for what:
 *   Join (proctype)     Service.Join, activity/service.go: claim; produce
 *                       and wait for acks=all; confirm; 200. After a failure
 *                       past the claim it releases and answers 503; the
 *                       instance may die at any step (its lease stays).
 *     claim (d_step)    claim.lua: the run_id fence; the limit counts the
 *                       words of the user's entry (the settled count pw[u],
 *                       seq words held[u] of this epoch);
 *                       used < stock; INCR used hands out a number, a locked
 *                       or issued one is swapped for a free one (BITPOS on
 *                       the slots bitmap); HINCRBY meta.seq; returns slot, epoch, seq and
 *                       H, the user's seq words before this claim.
 *     confirm (d_step)  confirm.lua: fence, epoch, lease, lock still ours;
 *                       ZREM the lease, issued bit, confirmed entry; the seq
 *                       word stays.
 *     release (inline)  release.lua + giveback.lua: fence, ZREM the lease,
 *                       DEL the lock if ours, DECR used, drop the seq word.
 *   Kafka (proctype)    mq/producer.go and the broker: an event handed to the
 *                       producer is appended at any later time, also after
 *                       its join timed out and answered 503 (the async
 *                       producer keeps retrying), or never; the join hears
 *                       the ack only once it is appended.
 *   Consumer (proctype) the mq consumer and Service.StoreEvents,
 *                       activity/settle.go: settle.lua for the next event of
 *                       the partition; later Repository.RecordBatch (INSERT;
 *                       a duplicate changes only a pending record),
 *                       forget.lua, the offset commit.
 *   Settler (proctype)  the job's Service.SettlePending: settle.lua for a
 *                       pending record, Repository.SettleParticipations
 *                       (UPDATE ... WHERE status = 'pending').
 *   settle (inline)     settle.lua: unknown when the state is missing or
 *                       fenced; given back when the claim's epoch is not
 *                       meta.epoch; confirmed; in flight (lease); given back.
 *   Reaper (proctype)   reap.lua + giveback.lua, from Reconciler.activity
 *                       (job/job.go); Redis expiring a slot lock (PX).
 *   Rebuild (proctype)  Reconciler.rebuild, job/job.go: no live state
 *                       (Store.Counters: missing or fenced), WaitCaughtUp,
 *                       then Repository.BeginRebuild (activity/mysql/repo.go),
 *                       one transaction: epoch+1, decide every pending
 *                       record of earlier epochs, read the valid ones; then
 *                       Store.Rebuild (stock/stock.go): rebuild_clear.lua +
 *                       rebuild_add.lua (issued bits, settled counts, used), and
 *                       preheat.lua (meta with the epoch and run_id: live).
 *     decide (inline)   the decision rule: (a) per (epoch, slot), (b) per
 *                       (epoch, user).
 *   Loss (proctype)     Redis forgetting: a restart with nothing (FLUSHDB, no
 *                       persistence, an empty replica) or with its last
 *                       writes lost (RDB or AOF reload, a lagging replica);
 *                       either way a new process with a new run_id.
 *   Final (proctype)    when every join is over and Kafka and the consumer
 *                       are drained: every 200 has its record, not void.
 *
 * What the model takes as the protocol where the notes of issue 10 leave a
 * choice (each variant above shows what goes wrong otherwise):
 *   - A pending record of an epoch before the one the rebuild ends is void:
 *     it arrived after that epoch's own rebuild began, so its join never
 *     confirmed. Only records of the ending epoch go through (a) and (b).
 *   - preheat.lua at the end of a rebuild stamps the run_id that the clear
 *     ran on (the Go side reads it first), so a restart in between leaves
 *     the state fenced; Store.Rebuild is several scripts.
 *   - One rebuild at a time: the rebuild lock holds. Without that
 *     (TWO_REBUILDERS) a stalled rebuild wipes or re-epochs a live state;
 *     REBUILD_TOKEN is a fence that fixes it. The code fences every Redis
 *     step of a rebuild (rebuild_clear.lua, rebuild_add.lua, preheat.lua)
 *     by the token of the activity's state lock, taken before the epoch
 *     moves in MySQL and renewed by each step.
 *
 * Choices that keep the search small without losing an interleaving that
 * could matter:
 *   - J1 starts when J0 is over: J1 can claim only once J0's claim is given
 *     back or its epoch is over, and then J0 can do nothing more.
 *   - The event goes to the producer in the claim's step: what becomes of it
 *     is the Kafka process's choice, at any later time.
 *   - The job's settle is one step: settle.lua's answer is true when given
 *     and the write changes only a pending record; the consumer's two steps
 *     already put stale answers against later states.
 *   - The reaper finds a lease only after its lock expired (both run out at
 *     the lease deadline on the Redis clock); a lock may expire any time.
 * Not modelled: idempotency keys, open and close, eviction, the issued
 * counter and the held-tokens hash (they only feed answers), a second
 * consumer instance.
 */

#define N     3                 /* join attempts */
#ifdef LIMIT2
/* one user, limit 2, stock 3: J0 and J1 at once, J2 after J0 */
#define STOCK 3
#define LIMIT 2
#define USERS 1
#define USER(j) 0
#define FIRST 1                 /* J0 and J1 start together */
#define RETRY 2                 /* J2 starts when J0 is over */
#else
#define STOCK 2
#define LIMIT 1
#define USERS 2
#define USER(j) ((j) == 2 -> 1 : 0)
#define FIRST 2                 /* J0 and J2 start together */
#define RETRY 1                 /* J1 (ghost's retry) starts when J0 is over */
#endif

#ifdef NORETRY
#define JOINS 2                 /* the retry never comes */
#else
#define JOINS N
#endif

#ifndef MAXLOSS
#define MAXLOSS 1
#endif
#ifndef RCRASH
#define RCRASH 0
#endif
#if defined(NO_FENCE) || defined(FULL_SNAPSHOT)
#define SNAPSHOTS 1
#endif

#define BIT(x) (1 << (x))

/* participations.status */
#define NONE    0
#define PENDING 1
#define VALID   2
#define VOID    3

/* settle.lua answers */
#define UNKNOWN   0
#define INFLIGHT  1
#define CONFIRMED 2
#define GIVENBACK 3

/* ---------------- Redis: the activity's keys in the running process ------ */
byte rid = 1;          /* run_id of the Redis process now running */
bool present = 1;      /* meta hash exists (preheated before the sale) */
byte mrid = 1;         /* meta.runid */
byte repoch = 1;       /* meta.epoch */
byte rseq;             /* meta.seq */
byte used;             /* used counter */
bool issued[STOCK];    /* issued bitmap */
byte lock[STOCK];      /* lock:<id>_<slot>: join index + 1, or 0 */
byte pw[USERS];        /* users hash: the settled count (tokens of earlier
                          epochs, or whose records are valid) */
byte held[USERS];      /* users hash: seq words of this epoch (bit q = seq q) */
bool lease[N];         /* leases zset: the claim of join j */
bool conf[N];          /* confirmed hash: the claim of join j */

byte losses;           /* Redis losses so far */
#ifdef SNAPSHOTS
/* the copy a loss of the last writes goes back to */
bool snap;
bool s_present; byte s_mrid, s_repoch, s_rseq, s_used;
bool s_issued[STOCK]; byte s_lock[STOCK];
byte s_pw[USERS], s_held[USERS];
bool s_lease[N], s_conf[N];
#endif

/* ---------------- the claim of join j: carried by its event and record --- */
byte jslot[N], jep[N], jseq[N], jH[N];

/* ---------------- Kafka (bit j: the event of join j) --------------------- */
byte sent;             /* with the producer, not in the log yet */
byte inlog;            /* appended (acknowledged, perhaps after the join gave up) */
byte order[N];         /* the partition: order[k] = join of the k-th event */
byte nlog;             /* events appended */
byte cpos;             /* committed offset: the records of order[0..cpos-1] are in MySQL */

/* ---------------- MySQL -------------------------------------------------- */
byte rec[N];           /* participations.status of the record of join j */
byte mepoch = 1;       /* activities.epoch */

/* ---------------- answers ------------------------------------------------ */
bool ok[N];            /* join j answered 200 with its token */
byte jdone;            /* joins that answered or died */

#ifdef TWO_REBUILDERS
byte rlk;              /* the rebuild lock: holder 1 or 2, 0 free */
#ifndef MAXTX
#define MAXTX 3        /* rebuild transactions at most (rebuilds can undo each other) */
#endif
byte ntx;
#define TXLEFT (ntx < MAXTX)
#else
#define TXLEFT (1)
#endif
byte rcrash;           /* rebuilds that died after their transaction */

hidden byte ti, tj, tc;   /* scratch, not part of the state */

#ifdef NO_FENCE
#define live() (present)
#elif defined(REBUILD_TOKEN)
byte bld;              /* meta.building: the token of the rebuild writing the state */
#define live() (present && mrid == rid && bld == 0)
#else
#define live() (present && mrid == rid)
#endif

#define HOLDS(j) (ok[j] || rec[j] == VALID)

/* The invariants; after every change of ok[] or rec[]. */
inline inv() {
	ti = 0;
	do
	:: ti < STOCK ->
		tc = 0; tj = 0;
		do
		:: tj < N -> if :: HOLDS(tj) && jslot[tj] == ti -> tc++ :: else fi; tj++
		:: else -> break
		od;
		assert(tc <= 1);              /* no two tokens on one slot */
		ti++
	:: else -> break
	od;
	ti = 0;
	do
	:: ti < USERS ->
		tc = 0; tj = 0;
		do
		:: tj < N -> if :: HOLDS(tj) && USER(tj) == ti -> tc++ :: else fi; tj++
		:: else -> break
		od;
		assert(tc <= LIMIT);          /* no user over the limit */
		ti++
	:: else -> break
	od;
	tc = 0; tj = 0;
	do
	:: tj < N -> if :: HOLDS(tj) -> tc++ :: else fi; tj++
	:: else -> break
	od;
	assert(tc <= STOCK);                  /* no oversell */
	tj = 0;
	do
	:: tj < N -> assert(!(ok[tj] && rec[tj] == VOID)); tj++   /* a 200 is never void */
	:: else -> break
	od;
	ti = 0; tj = 0; tc = 0
}

/* the number of seq words in a held[] bit set */
inline words(m, n) {
	n = 0; tj = 0;
	do
	:: tj < 8 -> if :: m & BIT(tj) -> n++ :: else fi; tj++
	:: else -> break
	od;
	tj = 0
}

/* giveback.lua for the claim of join j (its lease already removed) */
inline giveback(j) {
	if :: lock[jslot[j]] == j + 1 -> lock[jslot[j]] = 0 :: else fi;
	used--;
	held[USER(j)] = held[USER(j)] & ~BIT(jseq[j])
}

/* release.lua; the join answers 503 */
inline release(j) {
	d_step {
		if
		:: live() && lease[j] -> lease[j] = 0; giveback(j); printf("J%d release: given back\n", j)
		:: else -> printf("J%d release: nothing to give back\n", j)
		fi
	}
}

/* settle.lua for the claim of join j */
inline settle(j, out) {
	if
	:: !live() -> out = UNKNOWN
	:: else ->
		if
		:: jep[j] != repoch -> out = GIVENBACK
		:: else ->
			if
			:: conf[j] -> out = CONFIRMED
			:: else ->
				if
				:: lease[j] -> out = INFLIGHT
				:: else -> out = GIVENBACK
				fi
			fi
		fi
	fi
}

/* wipes the activity's keys (a loss, rebuild_clear.lua) */
inline wipe() {
	present = 0; mrid = 0; repoch = 0; rseq = 0; used = 0;
#ifdef REBUILD_TOKEN
	bld = 0;
#endif
	ti = 0;
	do
	:: ti < STOCK -> issued[ti] = 0; lock[ti] = 0; ti++
	:: else -> break
	od;
	ti = 0;
	do
	:: ti < USERS -> pw[ti] = 0; held[ti] = 0; ti++
	:: else -> break
	od;
	ti = 0;
	do
	:: ti < N -> lease[ti] = 0; conf[ti] = 0; ti++
	:: else -> break
	od;
	ti = 0
}

proctype Join(byte j) {
	byte s, n;
	bool got;

	atomic {
		d_step { /* claim.lua */
			words(held[USER(j)], n);
			if
			:: live() && pw[USER(j)] + n < LIMIT && used < STOCK ->
				/* INCR used hands out number used+1 (slot "used" here);
				   a locked or issued one is swapped for a free one */
				s = 0;
				do
				:: s < STOCK ->
					if
					:: !issued[(used + s) % STOCK] && lock[(used + s) % STOCK] == 0 ->
						got = 1; s = (used + s) % STOCK; break
					:: else -> s++
					fi
				:: else -> break
				od;
				if
				:: got ->
					rseq++;
					jslot[j] = s; jep[j] = repoch; jseq[j] = rseq; jH[j] = held[USER(j)];
					held[USER(j)] = held[USER(j)] | BIT(rseq);
					lock[s] = j + 1; lease[j] = 1; used++;
					printf("J%d claim: slot %d epoch %d seq %d H %d\n", j, s, repoch, rseq, jH[j])
				:: else -> printf("J%d claim: no free number\n", j)
				fi
			:: else -> printf("J%d claim refused (no state, limit or sold out)\n", j)
			fi;
			s = 0; n = 0
		}
		/* Recorder.Record: what becomes of the event is the Kafka process's
		   choice, so handing it over in the claim's step loses nothing */
		if
		:: got -> sent = sent | BIT(j)   /* it reaches the producer */
		:: got -> printf("J%d: its event never reaches Kafka\n", j)
		:: else
		fi
	}
	if
	:: got ->
		if
		:: d_step { /* acks=all, then confirm.lua */
			inlog & BIT(j) ->
			if
			:: live() && repoch == jep[j] && lease[j] && lock[jslot[j]] == j + 1 ->
				lease[j] = 0; lock[jslot[j]] = 0; issued[jslot[j]] = 1; conf[j] = 1;
				ok[j] = 1;        /* answered 200 once confirmed */
				printf("J%d acked, confirm: 200\n", j);
				inv()
			:: else -> printf("J%d acked, confirm refused\n", j)
			fi }
			if
			:: !ok[j] -> release(j)   /* 503 */
			:: else
			fi
		:: printf("J%d: Kafka timeout\n", j); release(j)   /* 503; Kafka may still append it */
		:: printf("J%d: instance dies\n", j)                /* the lease runs out */
		fi
	:: else
	fi;
	d_step { got = 0; jdone++ };
	if
#ifndef NORETRY
	:: j == 0 -> run Join(RETRY)   /* the user retries */
#endif
	:: else
	fi
}

proctype Kafka() {
end:
	do
	:: d_step { sent & BIT(0) -> sent = sent & ~BIT(0); inlog = inlog | BIT(0); order[nlog] = 0; nlog++;
		printf("Kafka: event of J0 appended at offset %d\n", nlog - 1) }
	:: d_step { sent & BIT(1) -> sent = sent & ~BIT(1); inlog = inlog | BIT(1); order[nlog] = 1; nlog++;
		printf("Kafka: event of J1 appended at offset %d\n", nlog - 1) }
	:: d_step { sent & BIT(2) -> sent = sent & ~BIT(2); inlog = inlog | BIT(2); order[nlog] = 2; nlog++;
		printf("Kafka: event of J2 appended at offset %d\n", nlog - 1) }
	od
}

/* Forget (forget.lua), once the record of join j is valid: what Redis
   answers for it no longer matters, and its seq word becomes a settled one
   in the user's entry (no later claim lists it) */
inline forget(j) {
	if
	:: live() && conf[j] ->
		conf[j] = 0; held[USER(j)] = held[USER(j)] & ~BIT(jseq[j]); pw[USER(j)]++
	:: else
	fi
}

/* RecordBatch: insert, or on a duplicate change a pending record only */
inline store(j, out) {
	if
	:: rec[j] == NONE || rec[j] == PENDING ->
		if
		:: out == CONFIRMED -> rec[j] = VALID
		:: out == GIVENBACK -> rec[j] = VOID
		:: else -> rec[j] = PENDING
		fi
	:: else
	fi
}

proctype Consumer() {
	byte out;
end:
	/* (a consumer that dies between its steps gets the event again: the
	   same as one that is slow) */
	do
	:: d_step { cpos < nlog -> settle(order[cpos], out);
		printf("consumer: settle J%d -> %d\n", order[cpos], out) }
		d_step {
			store(order[cpos], out);
			printf("consumer: record of J%d stored: %d\n", order[cpos], rec[order[cpos]]);
			inv();
			if :: out == CONFIRMED -> forget(order[cpos]) :: else fi;
			cpos++; out = 0 }         /* commit */
	od
}

/* SettleParticipations for one record */
inline settled(j, out) {
	if
	:: out == CONFIRMED -> rec[j] = VALID; forget(j)
	:: out == GIVENBACK -> rec[j] = VOID
	:: else
	fi;
	if :: out >= CONFIRMED -> printf("job: settle J%d -> %d, record %d\n", j, out, rec[j]) :: else fi;
	inv()
}

proctype Settler() {
	byte out;
end:
	do
	:: d_step { rec[0] == PENDING -> settle(0, out); settled(0, out); out = 0 }
	:: d_step { rec[1] == PENDING -> settle(1, out); settled(1, out); out = 0 }
	:: d_step { rec[2] == PENDING -> settle(2, out); settled(2, out); out = 0 }
	od
}

proctype Reaper() {
end:
	do
	:: d_step { live() && lease[0] && lock[jslot[0]] != 1 -> lease[0] = 0; giveback(0); printf("reaper: J0 given back\n") }
	:: d_step { live() && lease[1] && lock[jslot[1]] != 2 -> lease[1] = 0; giveback(1); printf("reaper: J1 given back\n") }
	:: d_step { live() && lease[2] && lock[jslot[2]] != 3 -> lease[2] = 0; giveback(2); printf("reaper: J2 given back\n") }
	/* a lock's PX runs out (a lock of a fenced state is never read) */
	:: d_step { live() && lock[0] != 0 -> lock[0] = 0; printf("Redis: lock of slot 0 expired\n") }
	:: d_step { live() && lock[1] != 0 -> lock[1] = 0; printf("Redis: lock of slot 1 expired\n") }
#if STOCK > 2
	:: d_step { live() && lock[2] != 0 -> lock[2] = 0; printf("Redis: lock of slot 2 expired\n") }
#endif
	od
}

/* Redis forgets. Under the run_id fence nothing of a state written by an
   earlier process is read again (every script refuses it, the rebuild
   clears it) but the existence of its meta hash, which only tells "fenced"
   from "missing" (both rebuild). So a loss of the last writes is the same to
   everyone as a total loss, whatever snapshot it goes back to. PARTIAL adds
   the short form (a meta hash of the old run_id and nothing else);
   FULL_SNAPSHOT (and NO_FENCE, where it matters) goes back to a copy of
   everything taken at a nondeterministic earlier moment. */
proctype Loss() {
end:
	do
	:: d_step { losses < MAXLOSS ->
		losses++; rid++; wipe();
#ifdef SNAPSHOTS
		snap = 0;
#endif
		printf("Redis LOST everything: new run_id %d\n", rid) }
#ifdef PARTIAL
	:: d_step { losses < MAXLOSS ->
		losses++; rid++; wipe(); present = 1; mrid = rid - 1;
		printf("Redis lost its last writes: new run_id %d\n", rid) }
#endif
#ifdef SNAPSHOTS
	:: d_step { !snap ->
		snap = 1;
		s_present = present; s_mrid = mrid; s_repoch = repoch; s_rseq = rseq; s_used = used;
		ti = 0;
		do
		:: ti < STOCK -> s_issued[ti] = issued[ti]; s_lock[ti] = lock[ti]; ti++
		:: else -> break
		od;
		ti = 0;
		do
		:: ti < USERS -> s_pw[ti] = pw[ti]; s_held[ti] = held[ti]; ti++
		:: else -> break
		od;
		ti = 0;
		do
		:: ti < N -> s_lease[ti] = lease[ti]; s_conf[ti] = conf[ti]; ti++
		:: else -> break
		od;
		ti = 0;
		printf("Redis: snapshot (RDB, AOF, replica offset)\n") }
	:: d_step { losses < MAXLOSS && snap ->
		losses++; rid++;
		present = s_present; mrid = s_mrid; repoch = s_repoch; rseq = s_rseq; used = s_used;
		ti = 0;
		do
		:: ti < STOCK -> issued[ti] = s_issued[ti]; lock[ti] = s_lock[ti]; s_issued[ti] = 0; s_lock[ti] = 0; ti++
		:: else -> break
		od;
		ti = 0;
		do
		:: ti < USERS -> pw[ti] = s_pw[ti]; held[ti] = s_held[ti]; s_pw[ti] = 0; s_held[ti] = 0; ti++
		:: else -> break
		od;
		ti = 0;
		do
		:: ti < N -> lease[ti] = s_lease[ti]; conf[ti] = s_conf[ti]; s_lease[ti] = 0; s_conf[ti] = 0; ti++
		:: else -> break
		od;
		ti = 0;
		snap = 0; s_present = 0; s_mrid = 0; s_repoch = 0; s_rseq = 0; s_used = 0;
		printf("Redis lost its last writes: back to the snapshot, new run_id %d\n", rid) }
#endif
#ifdef TWO_REBUILDERS
	:: d_step { rlk != 0 -> rlk = 0; printf("the rebuild lock expired\n") }
#endif
	od
}

/* BeginRebuild's decision for the pending record of join k, from the records
   as the transaction found them; old is the epoch that ends now. Void when
   (a) a valid record of the same epoch is on its slot, or a record of the
   same epoch and slot has a higher seq (whatever its status: the slot was
   claimed again, so this claim had lost it); or (b) a record of the same
   user and epoch has a higher seq and this seq is not in its H (this claim
   was given back before that one was made). Otherwise in doubt: valid. */
inline decide(k, old, d) {
#ifdef OLD_REBUILD
	d = VALID
#else
	d = VALID;
#ifndef RULE_ALL_EPOCHS
	/* a record of an earlier epoch still pending arrived after that epoch's
	   own rebuild had waited for the log: its join cannot have confirmed */
	if :: jep[k] < old -> d = VOID :: else fi;
#endif
	tj = 0;
	do
	:: tj < N ->
		if
		:: rec[tj] != NONE && tj != k && jep[tj] == jep[k] ->
			if
			/* (a) a valid record on the slot in that epoch */
			:: jslot[tj] == jslot[k] && rec[tj] == VALID -> d = VOID
			/* (a) a later claim of the slot in that epoch */
			:: jslot[tj] == jslot[k] && jseq[tj] > jseq[k] -> d = VOID
			/* (b) a later claim of the user that did not hold this one */
			:: USER(tj) == USER(k) && jseq[tj] > jseq[k] && !(jH[tj] & BIT(jseq[k])) -> d = VOID
			:: else
			fi
		:: else
		fi;
		tj++
	:: else -> break
	od;
	tj = 0
#endif
}

#ifdef REBUILD_TOKEN
/* A rebuild fenced by a token (a proposal, not the code): rebuild_clear.lua
   refuses a live state, else wipes it and leaves a meta hash with this
   run_id and building = the rebuild's token (not live: every script refuses
   it); only then the wait for the log end; the transaction moves the epoch
   only from the one read before the clear (UPDATE ... WHERE epoch = ?);
   rebuild_add.lua and preheat.lua act only while meta.building is still the
   token on the same run_id. */
proctype Rebuild(byte me) {
	byte wait, old, ne, d0, d1, d2, vmask, crid, tok;
end:
	do
	:: atomic {
#ifdef TWO_REBUILDERS
		rlk == 0 && !live() && TXLEFT -> rlk = me;   /* Locks.Lock, then Counters */
#else
		!live() ->                          /* Counters: missing or fenced */
#endif
		old = mepoch }                      /* the activity row's epoch */
		d_step { /* rebuild_clear.lua with the token */
			if
			:: live() -> crid = 0
			:: else ->
				wipe(); crid = rid; present = 1; mrid = rid; tok = (old + 1) * 4 + me; bld = tok
			fi;
			printf("rebuild %d: clear with token %d on run_id %d\n", me, tok, crid) }
		if :: crid == 0 -> goto restart :: else fi;
		d_step { wait = nlog; printf("rebuild %d: waits for offset %d\n", me, wait) }
		cpos >= wait;
		d_step { /* BeginRebuild: one MySQL transaction, from epoch old only */
			wait = 0;
			if
			:: mepoch == old ->
				mepoch++; ne = mepoch;
#ifdef TWO_REBUILDERS
				ntx++;
#endif
				if :: rec[0] == PENDING -> decide(0, old, d0) :: else -> d0 = rec[0] fi;
				if :: rec[1] == PENDING -> decide(1, old, d1) :: else -> d1 = rec[1] fi;
				if :: rec[2] == PENDING -> decide(2, old, d2) :: else -> d2 = rec[2] fi;
				printf("rebuild %d: epoch %d -> %d; records %d %d %d -> %d %d %d\n",
					me, old, ne, rec[0], rec[1], rec[2], d0, d1, d2);
				rec[0] = d0; rec[1] = d1; rec[2] = d2;
				inv();
				vmask = (rec[0] == VALID -> BIT(0) : 0) | (rec[1] == VALID -> BIT(1) : 0) |
				        (rec[2] == VALID -> BIT(2) : 0)
			:: else -> ne = 0; printf("rebuild %d: the epoch moved on\n", me)
			fi;
			old = 0; d0 = 0; d1 = 0; d2 = 0
		}
		if :: ne == 0 -> goto restart :: else fi;
		if
		:: rcrash < RCRASH -> rcrash++; printf("rebuild %d dies\n", me); goto restart
		:: skip
		fi;
		d_step { /* rebuild_add.lua, on this rebuild's state only */
			if
			:: present && mrid == rid && rid == crid && bld == tok ->
				do
				:: ti < N ->
					if
					:: vmask & BIT(ti) -> issued[jslot[ti]] = 1; pw[USER(ti)]++; used++
					:: else
					fi;
					ti++
				:: else -> break
				od;
				ti = 0
			:: else -> ne = 0
			fi;
			vmask = 0 }
		if :: ne == 0 -> goto restart :: else fi;
		d_step { /* preheat.lua, on this rebuild's state only: live */
			if
			:: present && mrid == rid && bld == tok -> repoch = ne; rseq = 0; bld = 0;
				printf("rebuild %d: live, epoch %d on run_id %d\n", me, ne, rid)
			:: else -> printf("rebuild %d: preheat refused\n", me)
			fi;
			ne = 0; crid = 0 }
restart:
		skip;
		d_step {
			wait = 0; old = 0; ne = 0; d0 = 0; d1 = 0; d2 = 0; vmask = 0; crid = 0; tok = 0;
#ifdef TWO_REBUILDERS
			if :: rlk == me -> rlk = 0 :: else fi;
#endif
			skip
		}
	od
}
#else
proctype Rebuild(byte me) {
	byte wait, old, ne, d0, d1, d2, vmask, crid;
end:
	do
	:: atomic {
#ifdef TWO_REBUILDERS
		rlk == 0 && !live() && TXLEFT -> rlk = me;   /* Locks.Lock, then Counters */
#else
		!live() ->                          /* Counters: missing or fenced */
#endif
		wait = nlog;                        /* WaitCaughtUp: the log end now */
		printf("rebuild %d: no live state; waits for offset %d\n", me, wait) }
		cpos >= wait;
		d_step { /* BeginRebuild: one MySQL transaction */
			wait = 0;
			old = mepoch; mepoch++; ne = mepoch;
#ifdef TWO_REBUILDERS
			ntx++;
#endif
			if :: rec[0] == PENDING -> decide(0, old, d0) :: else -> d0 = rec[0] fi;
			if :: rec[1] == PENDING -> decide(1, old, d1) :: else -> d1 = rec[1] fi;
			if :: rec[2] == PENDING -> decide(2, old, d2) :: else -> d2 = rec[2] fi;
			printf("rebuild %d: epoch %d -> %d; records %d %d %d -> %d %d %d\n",
				me, old, ne, rec[0], rec[1], rec[2], d0, d1, d2);
			rec[0] = d0; rec[1] = d1; rec[2] = d2;
			inv();
			vmask = (rec[0] == VALID -> BIT(0) : 0) | (rec[1] == VALID -> BIT(1) : 0) |
			        (rec[2] == VALID -> BIT(2) : 0);
			old = 0; d0 = 0; d1 = 0; d2 = 0
		}
		if
		:: rcrash < RCRASH -> rcrash++; printf("rebuild %d dies\n", me); goto restart
		:: skip
		fi;
		d_step { /* rebuild_clear.lua + rebuild_add.lua */
			crid = rid;
			wipe();
			do
			:: ti < N ->
				if
				:: vmask & BIT(ti) -> issued[jslot[ti]] = 1; pw[USER(ti)]++; used++
				:: else
				fi;
				ti++
			:: else -> break
			od;
			ti = 0; vmask = 0;
			printf("rebuild %d: cleared and replayed on run_id %d\n", me, crid)
		}
		/* (a rebuild that dies here leaves the state cleared, not live: the
		   same to everyone as one that died after its transaction) */
		d_step { /* preheat.lua (force): live */
			present = 1; repoch = ne; rseq = 0;
#ifdef STAMP_LATE
			mrid = rid;
#else
			mrid = crid;   /* fenced if Redis restarted since the clear */
#endif
			printf("rebuild %d: meta epoch %d run_id %d on run_id %d\n", me, ne, mrid, rid);
			ne = 0; crid = 0
		}
restart:
		skip;
		d_step {
			wait = 0; old = 0; ne = 0; d0 = 0; d1 = 0; d2 = 0; vmask = 0; crid = 0;
#ifdef TWO_REBUILDERS
			if :: rlk == me -> rlk = 0 :: else fi;
#endif
			skip
		}
	od
}
#endif

proctype Final() {
	atomic {
		jdone == JOINS && sent == 0 && cpos == nlog ->
		tj = 0;
		do
		:: tj < N ->
			/* no 200 lost: its event is in the log, its record not void */
			assert(!ok[tj] || ((inlog & BIT(tj)) && (rec[tj] == PENDING || rec[tj] == VALID)));
			tj++
		:: else -> break
		od;
		tj = 0
	}
}

init {
	atomic {
		run Join(0); run Join(FIRST);
		run Kafka(); run Consumer(); run Settler(); run Reaper(); run Loss();
		run Rebuild(1);
#ifdef TWO_REBUILDERS
		run Rebuild(2);
#endif
		run Final()
	}
}
