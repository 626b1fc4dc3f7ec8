// spike: the flash sale. One activity with stock 10,000; the crowd arrives at
// once (0 → 3,000 new users a second in 1 s, held 10 s: about 31,500 distinct
// users, three times the stock), each joining once. Every user gets a 200 with
// a token, a 409 sold_out, or, past what the instance takes at once, a 503
// shed at once with Retry-After (nothing taken; counted in joins_shed, and
// not sent again, so that the arrival rate stays the plan's); exactly
// `stock` tokens are handed out.
//
//   k6 run -e SECKILL_ADMIN_TOKEN=... loadtest/k6/spike.js
//
// Env: SPIKE_STOCK (10000), SPIKE_RATE (3000 joins/s; k6 itself saturates
// near 5k req/s on 2 cores), SPIKE_RAMP (1s), SPIKE_HOLD (10s),
// SPIKE_VUS (1000 pre-allocated), SPIKE_MAX_VUS (3000), OK_P99 (500 ms: the
// tokens' p99), SHED_P99 (250 ms: the shed answers' p99; on a machine where
// k6 has cores of its own, OK_P99=100 SHED_P99=10 are the service's
// targets), plus those of lib.js.

import {
  burst, createOpenActivity, envInt, invariantThresholds, join, joinLatencyThresholds, verify,
} from './lib.js';

const STOCK = envInt('SPIKE_STOCK', 10000);
const BURST = burst('SPIKE', 1000, 3000);
const RATE = BURST.rate;
const PLANNED = BURST.planned;

export const options = {
  scenarios: {
    spike: BURST.scenario,
  },
  thresholds: Object.assign({
    // Errors other than the expected 409 sold_out / limit_reached: under 1 %.
    unexpected_errors: ['rate<0.01'],
    'http_req_duration{name:join}': joinLatencyThresholds(250, 500),
    // Accepted joins stay fast, and shed ones are answered at once.
    join_ok_duration: [`p(99)<${envInt('OK_P99', 500)}`],
    join_shed_duration: [`p(99)<${envInt('SHED_P99', 250)}`],
    // Iterations k6 could not start for want of a free VU: under 1 % of the plan.
    dropped_iterations: [`count<${Math.max(1, Math.ceil(PLANNED * 0.01))}`],
    // The sale was really oversubscribed: at least twice as many users as slots.
    joiners: [`count>=${2 * STOCK}`],
  }, invariantThresholds),
};

export function setup() {
  const act = createOpenActivity({ name: 'k6 spike', stock: STOCK, perUserLimit: 1 });
  console.log(`spike: ${RATE} joins/s after a ${BURST.ramp} ramp, held ${BURST.hold}: about ${PLANNED} users for ${STOCK} slots`);
  return { id: act.id };
}

export default function (data) {
  join(data.id, `u-${__VU}-${__ITER}`);
}

export function teardown(data) {
  verify(data.id);
}
