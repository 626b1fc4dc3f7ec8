// sold-out storm: the same crowd, after the sell-out. setup() creates an
// activity with a small stock (100) and sells it out to early users; then the
// crowd arrives as in the spike (0 → 3,000 new users a second in 1 s, held
// 10 s) and every one of them must get 409 sold_out, fast: a sold-out
// activity should cost the service next to nothing.
//
//   k6 run -e SECKILL_ADMIN_TOKEN=... loadtest/k6/soldout.js
//
// Env: SOLDOUT_STOCK (100), SOLDOUT_RATE (3000 joins/s), SOLDOUT_RAMP (1s),
// SOLDOUT_HOLD (10s), SOLDOUT_VUS (500 pre-allocated), SOLDOUT_MAX_VUS (2000),
// SOLDOUT_P95 / SOLDOUT_P99 (100 / 250 ms), plus those of lib.js.

import http from 'k6/http';
import { Rate } from 'k6/metrics';
import {
  BASE_URL, burst, createOpenActivity, envInt, invariantThresholds, join, joinMany, verify,
} from './lib.js';

const STOCK = envInt('SOLDOUT_STOCK', 100);
const BURST = burst('SOLDOUT', 500, 2000);
const RATE = BURST.rate;
const PLANNED = BURST.planned;

// storm_sold_out: one sample per join of the storm, true when it was 409 sold_out.
const stormSoldOut = new Rate('storm_sold_out');

export const options = {
  scenarios: {
    storm: BURST.scenario,
  },
  thresholds: Object.assign({
    unexpected_errors: ['rate<0.01'],
    // Every join of the storm is answered 409 sold_out, none other.
    storm_sold_out: ['rate==1'],
    // ...and fast: no claim, no Kafka, no MySQL behind these answers.
    'http_req_duration{name:join,scenario:storm}': [
      `p(95)<${envInt('SOLDOUT_P95', 100)}`, `p(99)<${envInt('SOLDOUT_P99', 250)}`],
    dropped_iterations: [`count<${Math.max(1, Math.ceil(PLANNED * 0.01))}`],
    // The storm really came (the sell-out's users count too).
    joiners: [`count>=${STOCK + Math.floor(PLANNED * 0.9)}`],
  }, invariantThresholds),
};

export function setup() {
  const act = createOpenActivity({ name: 'k6 sold-out storm', stock: STOCK, perUserLimit: 1 });
  const early = [];
  for (let i = 0; i < STOCK; i++) early.push(`early-${i}`);
  const outcomes = joinMany(act.id, early);
  const ok = outcomes.filter((o) => o === 'ok').length;
  if (ok !== STOCK) throw new Error(`sell-out: ${ok} of ${STOCK} early users got a token (${outcomes.filter((o) => o !== 'ok').join(', ')})`);
  const pub = http.get(`${BASE_URL}/api/v1/activities/${act.id}`, { tags: { name: 'public activity' } });
  if (pub.status !== 200 || pub.json('remaining') !== 0) {
    throw new Error(`after the sell-out the activity answers ${pub.status} ${pub.body}, want remaining 0`);
  }
  console.log(`sold out ${STOCK} slots; storm: ${RATE} joins/s after a ${BURST.ramp} ramp, held ${BURST.hold}: about ${PLANNED} users`);
  return { id: act.id };
}

export default function (data) {
  const j = join(data.id, `u-${__VU}-${__ITER}`);
  stormSoldOut.add(j.outcome === 'sold_out');
}

export function teardown(data) {
  verify(data.id);
}
