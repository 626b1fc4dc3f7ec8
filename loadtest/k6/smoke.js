// smoke: a handful of users, every endpoint once, correctness only.
//
// setup() checks /healthz, /readyz, /metrics, the admin guard (401) and a bad
// join (400, takes nothing), and opens two activities:
//   A, stock 10 (more than the users): each VU is one user who reads the public
//     activity, joins (200), looks its token up, joins again (409
//     limit_reached: the limit is 1), looks up a token that does not exist
//     (404), lists and reads the activity as an admin;
//   B, stock 1: every user joins once; one gets the token, the others 409 sold_out.
// teardown() verifies both (see lib.js verify).
//
//   k6 run -e SECKILL_ADMIN_TOKEN=... loadtest/k6/smoke.js
//
// Env: SMOKE_VUS (5), SMOKE_STOCK (10, more than SMOKE_VUS), plus those of lib.js.

import http from 'k6/http';
import { check, sleep } from 'k6';
import {
  BASE_URL, JWT_SECRET, admin, baseURL, createOpenActivity, envInt, getActivity, invariantThresholds,
  join, joinCounters, joinHeaders, joinLatencyThresholds, unexpectedErrors, userJWT, verify,
} from './lib.js';

const VUS = envInt('SMOKE_VUS', 5);
const STOCK = envInt('SMOKE_STOCK', 10);
const soldOutCounters = joinCounters('_b'); // the joins of activity B

export const options = {
  scenarios: {
    smoke: { executor: 'per-vu-iterations', vus: VUS, iterations: 1, maxDuration: '1m' },
  },
  thresholds: Object.assign({
    checks: ['rate==1'], // every check, of the answers and of the invariants
    unexpected_errors: ['rate==0'],
    'http_req_duration{name:join}': joinLatencyThresholds(250, 500),
    dropped_iterations: ['count==0'],
  }, invariantThresholds),
};

function errCode(r) {
  try { return r.json('error.code'); } catch (_) { return undefined; }
}

export function setup() {
  if (STOCK <= VUS) throw new Error(`SMOKE_STOCK (${STOCK}) must exceed SMOKE_VUS (${VUS}): every user of A gets a token`);
  // Operations endpoints, and the admin guard.
  for (const p of ['/healthz', '/readyz', '/metrics']) {
    const r = http.get(`${BASE_URL}${p}`, { tags: { name: p } });
    check(r, { [`GET ${p} is 200`]: (x) => x.status === 200 });
  }
  const unauth = http.get(`${BASE_URL}/api/v1/admin/activities`,
    { tags: { name: 'admin list unauthorized' }, responseCallback: http.expectedStatuses(401) });
  check(unauth, {
    'admin without token is 401 unauthorized': (r) => r.status === 401 && errCode(r) === 'unauthorized',
  });

  const a = createOpenActivity({ name: 'k6 smoke A', stock: STOCK, perUserLimit: 1 });
  const b = createOpenActivity({ name: 'k6 smoke B (sells out)', stock: 1, perUserLimit: 1 });

  // Bad input takes nothing.
  const bad = http.post(`${BASE_URL}/api/v1/activities/${a.id}/join`, JSON.stringify({ userId: '' }),
    { headers: { 'Content-Type': 'application/json' }, tags: { name: 'join bad input' },
      responseCallback: http.expectedStatuses(400) });
  check(bad, {
    // In jwt mode a join without a token is refused before its body is read.
    'join with an empty userId is 400 invalid_request (401 unauthorized without a token in jwt mode)': (r) => (JWT_SECRET
      ? r.status === 401 && errCode(r) === 'unauthorized'
      : r.status === 400 && errCode(r) === 'invalid_request'),
  });
  if (JWT_SECRET) {
    const otherUser = http.post(`${BASE_URL}/api/v1/activities/${a.id}/join`, JSON.stringify({ userId: 'k6-someone-else' }),
      { headers: joinHeaders('k6-me'), tags: { name: 'join bad input' }, responseCallback: http.expectedStatuses(400) });
    check(otherUser, { 'jwt mode: a body naming another user is 400 invalid_request': (r) => r.status === 400 && errCode(r) === 'invalid_request' });
    const forged = http.post(`${BASE_URL}/api/v1/activities/${a.id}/join`, '',
      { headers: { Authorization: `Bearer ${userJWT('k6-forged', 'not-the-secret-of-the-service-0123456789')}` },
        tags: { name: 'join bad input' }, responseCallback: http.expectedStatuses(401) });
    check(forged, { 'jwt mode: a token of another key is 401 unauthorized': (r) => r.status === 401 && errCode(r) === 'unauthorized' });
  }
  const after = getActivity(a.id, true);
  check(after, { 'a bad join takes nothing': (x) => x.stats.claimed === 0 });
  return { id: a.id, idB: b.id, stock: STOCK };
}

export default function (data) {
  const id = data.id;
  const user = `smoke-${__VU}`;

  const pub = http.get(`${baseURL()}/api/v1/activities/${id}`, { tags: { name: 'public activity' } });
  unexpectedErrors.add(pub.status !== 200);
  check(pub, {
    'public activity is 200': (r) => r.status === 200,
    'public activity is open': (r) => r.json('state') === 'open' && r.json('id') === id,
    'remaining within [0, stock]': (r) => r.json('remaining') >= 0 && r.json('remaining') <= data.stock,
  });

  const first = join(id, user);
  check(first, { 'first join is 200 with a token': (j) => j.outcome === 'ok' });
  if (first.outcome === 'ok') {
    const t = first.body;
    check(t, { 'slot within [1, stock]': (b) => b.slot >= 1 && b.slot <= data.stock });
    // With several instances, from another than the one that issued it.
    const look = http.get(`${baseURL()}/api/v1/tokens/${encodeURIComponent(t.token)}`, { tags: { name: 'token' } });
    unexpectedErrors.add(look.status !== 200);
    check(look, {
      'token lookup is 200': (r) => r.status === 200,
      'token lookup matches the join': (r) => r.json('token') === t.token && r.json('slot') === t.slot &&
        r.json('userId') === user && r.json('activityId') === id,
    });
    const again = join(id, user, false);
    check(again, { 'second join of the same user is 409 limit_reached': (j) => j.outcome === 'limit_reached' });
  }

  const none = http.get(`${BASE_URL}/api/v1/tokens/no-such-token-${__VU}`,
    { tags: { name: 'token unknown' }, responseCallback: http.expectedStatuses(404) });
  check(none, { 'unknown token is 404 not_found': (r) => r.status === 404 && errCode(r) === 'not_found' });

  const list = admin('GET', '/activities?state=open&limit=100', undefined, 200, 'admin list', false);
  check(list, { 'admin list has the activity': (l) => !!l && l.activities.some((x) => x.id === id) });

  const got = getActivity(id);
  check(got, {
    'admin get has stats': (x) => !!x && !!x.stats,
    'admin get: claimed <= stock': (x) => !!x && x.stats.claimed <= x.stock,
  });

  // B: stock 1 for the whole crowd.
  // A 503 with Retry-After (the one slot still in flight, or the join
  // shed) takes nothing and asks to come back: the user does.
  let b = join(data.idB, user, true, soldOutCounters);
  for (let i = 0; i < 50 && (b.outcome === 'slots_in_flight' || b.outcome === 'shed'); i++) {
    sleep(0.1);
    b = join(data.idB, user, true, soldOutCounters);
  }
  check(b, { 'join of a one-slot activity is 200 or 409 sold_out': (j) => j.outcome === 'ok' || j.outcome === 'sold_out' });
}

export function teardown(data) {
  verify(data.id);
  verify(data.idB, soldOutCounters);
}
