// soak: a few minutes at a moderate rate on an activity with a large stock
// (1,000,000), so that every user gets a token: 300 new users a second for
// 3 minutes, each joining once; one in ten then looks its token up and one in
// ten reads the public activity. A watcher reads the admin stats every 5 s and
// checks that nothing is oversold while the sale runs. What a soak finds:
// latency creeping up, memory or connection leaks, the MySQL writer falling
// behind (record_lag), stuck claims (inFlight).
//
//   k6 run -e SECKILL_ADMIN_TOKEN=... loadtest/k6/soak.js
//   k6 run -e SECKILL_ADMIN_TOKEN=... -e SOAK_DURATION=30s loadtest/k6/soak.js
//
// Env: SOAK_DURATION (3m), SOAK_RATE (300 joins/s), SOAK_STOCK (1000000),
// SOAK_VUS (100 pre-allocated), SOAK_MAX_VUS (1000), plus those of lib.js.

import http from 'k6/http';
import { check } from 'k6';
import { Trend } from 'k6/metrics';
import {
  baseURL, createOpenActivity, envInt, envStr, getActivity, invariantThresholds, join,
  joinLatencyThresholds, seconds, unexpectedErrors, verify,
} from './lib.js';

const DURATION = envStr('SOAK_DURATION', '3m');
const RATE = envInt('SOAK_RATE', 300);
const STOCK = envInt('SOAK_STOCK', 1000000);
const PLANNED = Math.round(RATE * seconds(DURATION));

// record_lag: tokens issued but not yet recorded in MySQL, sampled every 5 s.
const recordLag = new Trend('record_lag');

export const options = {
  scenarios: {
    soak: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: envInt('SOAK_VUS', 100),
      maxVUs: envInt('SOAK_MAX_VUS', 1000),
      gracefulStop: '30s',
    },
    watch: {
      executor: 'constant-arrival-rate',
      exec: 'watch',
      rate: 1,
      timeUnit: '5s',
      duration: DURATION,
      preAllocatedVUs: 1,
      maxVUs: 2,
    },
  },
  thresholds: Object.assign({
    unexpected_errors: ['rate<0.01'],
    'http_req_duration{name:join}': joinLatencyThresholds(250, 500),
    'http_req_duration{name:token}': ['p(95)<250', 'p(99)<500'],
    'http_req_duration{name:public activity}': ['p(95)<250', 'p(99)<500'],
    dropped_iterations: [`count<${Math.max(1, Math.ceil(PLANNED * 0.01))}`],
    // MySQL keeps up: at any sample, under 5 s worth of joins not yet recorded.
    record_lag: [`max<${RATE * 5}`],
  }, invariantThresholds),
};

export function setup() {
  if (PLANNED >= STOCK) throw new Error(`SOAK_STOCK ${STOCK} must exceed the ${PLANNED} planned joins`);
  const act = createOpenActivity({ name: 'k6 soak', stock: STOCK, perUserLimit: 1 });
  console.log(`soak: ${RATE} joins/s for ${DURATION}: about ${PLANNED} users, stock ${STOCK}`);
  return { id: act.id };
}

export default function (data) {
  const user = `u-${__VU}-${__ITER}`;
  const j = join(data.id, user);
  if (j.outcome === 'ok' && __ITER % 10 === 0) {
    const r = http.get(`${baseURL()}/api/v1/tokens/${encodeURIComponent(j.body.token)}`, { tags: { name: 'token' } });
    let same = false;
    try { same = r.status === 200 && r.json('slot') === j.body.slot && r.json('userId') === user; } catch (_) { /* not JSON */ }
    unexpectedErrors.add(!same);
    if (!same) console.warn(`token lookup of ${user}: ${r.status} ${String(r.body).slice(0, 200)}`);
  }
  if (__ITER % 10 === 5) {
    const r = http.get(`${baseURL()}/api/v1/activities/${data.id}`, { tags: { name: 'public activity' } });
    unexpectedErrors.add(r.status !== 200);
  }
}

// watch checks, while the sale runs, that nothing is oversold and samples how
// far MySQL is behind.
export function watch(data) {
  const a = getActivity(data.id);
  if (!a) {
    unexpectedErrors.add(true);
    return;
  }
  const s = a.stats;
  check(s, {
    'during the run: claimed <= stock': (x) => x.claimed <= a.stock,
    'during the run: issued <= claimed': (x) => x.issued <= x.claimed,
    'during the run: recorded <= issued': (x) => x.recorded <= x.issued,
  }, { scope: 'invariant' });
  recordLag.add(s.issued - s.recorded);
}

export function teardown(data) {
  verify(data.id);
}
