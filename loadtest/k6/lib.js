// Shared helpers of the k6 scenarios: configuration from the environment, the
// admin API (create, approve, open, stats, close), a join that classifies its
// answer, and the end-of-run verification of the invariants.
//
// Environment:
//   SECKILL_URL          base URL of the service (default http://127.0.0.1:8080);
//                        several, comma-separated, for instances of one service
//                        (make run-cluster prints them): the admin calls go to
//                        the first, the joins to each in turn
//   SECKILL_ADMIN_TOKEN  bearer token of /api/v1/admin/* (required)
//   K6_API               k6's own REST API, read by teardown to learn how many
//                        users joined (default http://127.0.0.1:6565, k6's
//                        default --address; set it when you pass --address)
//   VERIFY_TIMEOUT       seconds teardown waits for MySQL to converge (default 20)
//   KEEP_OPEN=1          leave the activity open after the run (default: close it)
//   LOG_ERRORS           unexpected answers logged per VU (default 5)
//   SECKILL_JWT_SECRET   for a service in jwt mode (SECKILL_USER_AUTH=jwt): the
//                        "k" (base64url) of an oct key of its JWKS file; every
//                        join then carries the HS256 JWT of its user (README,
//                        "How to run with a JWKS file")
//   SECKILL_JWT_KID      that key's kid (none in the tokens when empty)
//   SECKILL_JWT_ISSUER, SECKILL_JWT_AUDIENCE
//                        iss and aud of the tokens: the service's settings

import http from 'k6/http';
import crypto from 'k6/crypto';
import encoding from 'k6/encoding';
import { check, fail, sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';

// BASE_URLS are the instances of SECKILL_URL; BASE_URL, the first, takes the
// admin calls.
export const BASE_URLS = (__ENV.SECKILL_URL || 'http://127.0.0.1:8080').split(',').map((u) => {
  const b = u.trim().replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+/.test(b)) {
    throw new Error(`SECKILL_URL=${__ENV.SECKILL_URL}: want base URLs such as http://127.0.0.1:8080, comma-separated`);
  }
  return b;
});
export const BASE_URL = BASE_URLS[0];
export const ADMIN_TOKEN = __ENV.SECKILL_ADMIN_TOKEN || '';
export const K6_API = (__ENV.K6_API || 'http://127.0.0.1:6565').replace(/\/+$/, '');

// unexpected_errors: one sample per request of the load, true when the answer
// is anything but a 2xx, one of the expected 409s (sold_out, limit_reached),
// a shed join or slots_in_flight (503s with Retry-After that take nothing): a
// 5xx, a 503 of a dependency, a timeout, a 409 not_open, a malformed 200...
export const unexpectedErrors = new Rate('unexpected_errors');
// joins_shed: joins the service shed because too many were in progress (503
// "the service is busy", Retry-After, nothing taken); join_ok_duration and
// join_shed_duration: the latencies of tokens and of shed joins, ms.
export const joinsShed = new Counter('joins_shed');
export const joinOKDuration = new Trend('join_ok_duration', true);
export const joinShedDuration = new Trend('join_shed_duration', true);
// joinCounters returns the counters of one activity's joins (call it in the
// init context, once per activity a script sells; suffix '' is the default):
//   joiners<suffix>:         distinct users whose (first) join was decided: 200 or 409 sold_out
//   tokens_received<suffix>: 200 answers with a token, as the clients saw them
// teardown() reads them back through k6's REST API (see verify).
export function joinCounters(suffix = '') {
  return {
    joiners: new Counter(`joiners${suffix}`),
    tokens: new Counter(`tokens_received${suffix}`),
    joinersName: `joiners${suffix}`,
    tokensName: `tokens_received${suffix}`,
  };
}
const defaultCounters = joinCounters();
// invariants_verified: how many invariant checks teardown ran; a threshold
// count>0 fails the run when teardown never got to them.
export const invariantsVerified = new Counter('invariants_verified');

// Expected HTTP statuses of a join: k6's http_req_failed then counts only the
// others. unexpected_errors is the precise metric (it reads the error code).
const joinStatuses = http.expectedStatuses({ min: 200, max: 299 }, 409, 503);

const EXPECTED_409 = { sold_out: true, limit_reached: true };
const MAX_LOGGED = Number(__ENV.LOG_ERRORS || 5); // unexpected answers logged per VU
let logged = 0;

// nth counts this VU's calls of baseURL; VUs start at different instances.
let nth = __VU;

// baseURL returns the instances of BASE_URLS in turn, one per call: the joins
// (and the scripts' lookups) spread over all of them. With one URL, BASE_URL.
export function baseURL() {
  return BASE_URLS[nth++ % BASE_URLS.length];
}

// ---------------------------------------------------------------- user JWTs

// JWT_SECRET is the HMAC key of SECKILL_JWT_SECRET, decoded; null when the
// joins carry no token (a service in body mode).
export const JWT_SECRET = __ENV.SECKILL_JWT_SECRET
  ? encoding.b64decode(__ENV.SECKILL_JWT_SECRET.replace(/=+$/, ''), 'rawurl')
  : null;
const JWT_HEADER = encoding.b64encode(JSON.stringify(
  __ENV.SECKILL_JWT_KID ? { alg: 'HS256', typ: 'JWT', kid: __ENV.SECKILL_JWT_KID } : { alg: 'HS256', typ: 'JWT' }), 'rawurl');

// userJWT returns the HS256 JWT of userId, valid from a minute ago for an
// hour, with the iss and aud of the environment, signed with JWT_SECRET (or
// secret when given).
export function userJWT(userId, secret = JWT_SECRET) {
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: userId, iat: now, nbf: now - 60, exp: now + 3600 };
  if (__ENV.SECKILL_JWT_ISSUER) claims.iss = __ENV.SECKILL_JWT_ISSUER;
  if (__ENV.SECKILL_JWT_AUDIENCE) claims.aud = __ENV.SECKILL_JWT_AUDIENCE;
  const signed = `${JWT_HEADER}.${encoding.b64encode(JSON.stringify(claims), 'rawurl')}`;
  return `${signed}.${crypto.hmac('sha256', secret, signed, 'base64rawurl')}`;
}

// joinHeaders are the headers of a join of userId: its bearer JWT when
// SECKILL_JWT_SECRET is set.
export function joinHeaders(userId) {
  const h = { 'Content-Type': 'application/json' };
  if (JWT_SECRET) h.Authorization = `Bearer ${userJWT(userId)}`;
  return h;
}

// ---------------------------------------------------------------- environment

export function envInt(name, def) {
  const v = __ENV[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${name}=${v}: not a number`);
  return n;
}

export function envStr(name, def) {
  const v = __ENV[name];
  return v === undefined || v === '' ? def : v;
}

// seconds parses a k6 duration such as "500ms", "10s", "3m", "1h30m".
export function seconds(d) {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let matched = '';
  let m;
  while ((m = re.exec(d)) !== null) {
    matched += m[0];
    total += Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2]];
  }
  if (matched !== d) throw new Error(`duration ${d}: use e.g. 500ms, 10s, 3m, 1h30m`);
  return total;
}

// The latency bounds of joins, for a 2-core machine shared by k6, the service,
// Redis, MariaDB and the embedded broker. Override with JOIN_P95 / JOIN_P99 (ms).
export function joinLatencyThresholds(p95, p99) {
  return [`p(95)<${envInt('JOIN_P95', p95)}`, `p(99)<${envInt('JOIN_P99', p99)}`];
}

// burst is the crowd of a flash sale as a ramping-arrival-rate scenario:
// 0 → RATE new users a second within RAMP, held for HOLD, read from the env
// variables <PREFIX>_RATE, _RAMP, _HOLD, _VUS and _MAX_VUS. planned is the
// number of iterations k6 plans to start: the ramp's triangle plus the plateau.
export function burst(prefix, vus, maxVUs) {
  const rate = envInt(`${prefix}_RATE`, 3000);
  const ramp = envStr(`${prefix}_RAMP`, '1s');
  const hold = envStr(`${prefix}_HOLD`, '10s');
  return {
    rate,
    ramp,
    hold,
    planned: Math.round(rate * (seconds(ramp) / 2 + seconds(hold))),
    scenario: {
      executor: 'ramping-arrival-rate',
      startRate: 0,
      timeUnit: '1s',
      preAllocatedVUs: envInt(`${prefix}_VUS`, vus),
      maxVUs: envInt(`${prefix}_MAX_VUS`, maxVUs),
      stages: [
        { target: rate, duration: ramp },
        { target: rate, duration: hold },
      ],
      gracefulStop: '30s',
    },
  };
}

// ---------------------------------------------------------------- admin API

function adminParams(name, extra) {
  return Object.assign({
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
    tags: { name },
    responseCallback: http.expectedStatuses({ min: 200, max: 299 }),
  }, extra || {});
}

function requireToken() {
  if (!ADMIN_TOKEN) {
    fail('SECKILL_ADMIN_TOKEN is not set: export the admin token the service was started with ' +
      '(make run prints it when it generates one)');
  }
}

// admin sends one admin request and fails the test (in setup) or returns null
// (elsewhere, with orFail false) on an answer other than want.
export function admin(method, path, body, want, name, orFail = true) {
  const url = `${BASE_URL}/api/v1/admin${path}`;
  const payload = body === undefined ? null : JSON.stringify(body);
  const r = http.request(method, url, payload, adminParams(name || `admin ${method} ${path.replace(/\d+/g, '{id}')}`));
  if (r.status !== want) {
    const msg = `${method} ${url}: want ${want}, got ${r.status} ${r.error || ''} ${String(r.body).slice(0, 300)}`;
    if (orFail) fail(msg);
    console.error(msg);
    return null;
  }
  return r.json();
}

// createOpenActivity creates an activity whose window started a minute ago,
// approves it and opens it (which preheats its stock in Redis).
export function createOpenActivity({ name, stock, perUserLimit = 1, hours = 2 }) {
  requireToken();
  for (const base of BASE_URLS) {
    const ready = http.get(`${base}/readyz`, { tags: { name: 'readyz' } });
    if (ready.status !== 200) {
      fail(`${base}/readyz answered ${ready.status} ${ready.error || ''} ${String(ready.body).slice(0, 200)}: ` +
        'start the service first (make run) and set SECKILL_URL if it is not on 127.0.0.1:8080');
    }
  }
  const now = Date.now();
  const created = admin('POST', '/activities', {
    name: `${name} ${new Date(now).toISOString()}`,
    description: 'created by a k6 load test (loadtest/k6)',
    stock,
    perUserLimit,
    beginAt: new Date(now - 60 * 1000).toISOString(),
    endAt: new Date(now + hours * 3600 * 1000).toISOString(),
  }, 201, 'admin create');
  admin('POST', `/activities/${created.id}/approve`, undefined, 200, 'admin approve');
  const opened = admin('POST', `/activities/${created.id}/open`, undefined, 200, 'admin open');
  if (opened.state !== 'open') fail(`activity ${created.id} is ${opened.state} after open`);
  console.log(`activity ${opened.id} open: stock ${stock}, perUserLimit ${perUserLimit}, on ${BASE_URLS.join(', ')}`);
  return opened;
}

// getActivity is the admin view of one activity with its live stats.
export function getActivity(id, orFail = false) {
  return admin('GET', `/activities/${id}`, undefined, 200, 'admin get', orFail);
}

export function closeActivity(id) {
  if (__ENV.KEEP_OPEN === '1') return;
  const r = http.post(`${BASE_URL}/api/v1/admin/activities/${id}/close`, null,
    adminParams('admin close', { responseCallback: http.expectedStatuses({ min: 200, max: 299 }, 409) }));
  if (r.status !== 200 && r.status !== 409) console.error(`close activity ${id}: ${r.status} ${r.body}`);
}

// ---------------------------------------------------------------- joining

// errorField is the string field name of the error JSON of r ('' when r has
// none).
function errorField(r, name) {
  try {
    const v = r.json(`error.${name}`);
    return typeof v === 'string' ? v : '';
  } catch (_) {
    return '';
  }
}

// classify names the outcome of a join: ok, sold_out, limit_reached, shed,
// slots_in_flight (both 503 with Retry-After, nothing taken), or
// unexpected:<status>:<code>.
export function classify(r, activityId, userId) {
  if (r.status === 200) {
    let b = null;
    try { b = r.json(); } catch (_) { /* not JSON */ }
    if (b && typeof b.token === 'string' && b.token.length > 0 && b.activityId === activityId &&
      b.userId === userId && b.slot >= 1) {
      return 'ok';
    }
    return 'unexpected:200:malformed';
  }
  if (r.status === 409) {
    const code = errorField(r, 'code');
    if (EXPECTED_409[code]) return code;
    return `unexpected:409:${code}`;
  }
  if (r.status === 503 && r.headers['Retry-After']) {
    const code = errorField(r, 'code');
    if (code === 'unavailable' && errorField(r, 'message').startsWith('the service is busy')) return 'shed';
    // Every slot taken, some only by joins in flight: retry, nothing taken.
    if (code === 'slots_in_flight') return code;
  }
  return `unexpected:${r.status}:${r.status === 0 ? r.error_code : errorField(r, 'code')}`;
}

function record(outcome, r, userId, countJoiner, ctr) {
  const bad = outcome.startsWith('unexpected');
  unexpectedErrors.add(bad);
  if (bad && logged < MAX_LOGGED) {
    logged++;
    console.warn(`join ${userId}: ${outcome} ${r.status === 0 ? r.error : String(r.body).slice(0, 200)}`);
  }
  if (countJoiner && (outcome === 'ok' || outcome === 'sold_out')) ctr.joiners.add(1);
  if (outcome === 'ok') {
    ctr.tokens.add(1);
    joinOKDuration.add(r.timings.duration);
  }
  if (outcome === 'shed') {
    joinsShed.add(1);
    joinShedDuration.add(r.timings.duration);
  }
}

function joinRequest(activityId, userId) {
  return {
    method: 'POST',
    url: `${baseURL()}/api/v1/activities/${activityId}/join`,
    body: JSON.stringify({ userId }),
    params: {
      headers: joinHeaders(userId),
      tags: { name: 'join' },
      responseCallback: joinStatuses,
    },
  };
}

// join sends one join for userId and records its outcome. countJoiner: this is
// the user's first join (counted in joiners when decided); ctr: the counters
// of the activity (joinCounters). Returns { res, outcome, body } (body is the
// token JSON when outcome is ok).
export function join(activityId, userId, countJoiner = true, ctr = defaultCounters) {
  const q = joinRequest(activityId, userId);
  const r = http.post(q.url, q.body, q.params);
  const outcome = classify(r, activityId, userId);
  record(outcome, r, userId, countJoiner, ctr);
  return { res: r, outcome, body: outcome === 'ok' ? r.json() : null };
}

// joinMany sends the first joins of userIds in parallel batches (setup).
// Returns the outcomes, in order.
export function joinMany(activityId, userIds, batch = 50, ctr = defaultCounters) {
  const out = [];
  for (let i = 0; i < userIds.length; i += batch) {
    const ids = userIds.slice(i, i + batch);
    const rs = http.batch(ids.map((u) => joinRequest(activityId, u)));
    rs.forEach((r, j) => {
      const outcome = classify(r, activityId, ids[j]);
      record(outcome, r, ids[j], true, ctr);
      out.push(outcome);
    });
  }
  return out;
}

// ---------------------------------------------------------------- verification

// metricCount reads the current count of a counter from k6's REST API. The
// engine ingests samples about once a second, so read until two reads agree.
function metricCount(metric) {
  let last = null;
  for (let i = 0; i < 10; i++) {
    const r = http.get(`${K6_API}/v1/metrics/${metric}`, { tags: { name: 'k6 api' }, responseCallback: http.expectedStatuses(200, 404) });
    let v;
    if (r.status === 404) v = 0; // never added
    else if (r.status === 200) v = r.json('data.attributes.sample.count') || 0;
    else return null;
    if (v === last) return v;
    last = v;
    sleep(1.2);
  }
  return last;
}

function converged(a) {
  const s = a.stats;
  return s && s.inFlight === 0 && s.claimed === s.issued && s.recorded === s.issued &&
    s.surplus === a.stock - s.claimed;
}

function inv(name, ok) {
  invariantsVerified.add(1);
  check(null, { [name]: () => ok }, { scope: 'invariant' });
  if (!ok) console.error(`INVARIANT FAILED: ${name}`);
  return ok;
}

// verify is the end of every scenario (call it from teardown, with the counters
// the activity's joins used): it learns from k6's REST API how many distinct
// users joined and how many tokens the clients
// received, waits up to VERIFY_TIMEOUT seconds for the reconcile job to bring
// MySQL in line, then checks, tagged scope:invariant:
//   issued == min(stock, distinct joiners), tokens received == issued,
//   claimed <= stock, issued <= stock, nothing in flight,
//   claimed == issued, recorded == issued, surplus == stock - claimed.
// A failed check fails the run through the threshold on checks{scope:invariant}.
export function verify(activityId, ctr = defaultCounters) {
  const nJoiners = metricCount(ctr.joinersName);
  const nTokens = metricCount(ctr.tokensName);
  inv(`k6 REST API answers at ${K6_API} (joiner count)`, nJoiners !== null && nTokens !== null);

  const deadline = Date.now() + envInt('VERIFY_TIMEOUT', 20) * 1000;
  let a = getActivity(activityId);
  while (!(a && converged(a)) && Date.now() < deadline) {
    sleep(0.5);
    a = getActivity(activityId) || a;
  }
  if (!inv(`admin GET /activities/${activityId} answers with stats`, !!(a && a.stats))) return;
  const s = a.stats;
  const stock = a.stock;
  console.log(`activity ${activityId}: stock=${stock} joiners=${nJoiners} tokensReceived=${nTokens} | ` +
    `claimed=${s.claimed} issued=${s.issued} recorded=${s.recorded} surplus=${s.surplus} ` +
    `inFlight=${s.inFlight} reconciledAt=${s.reconciledAt}`);

  inv('no oversell: claimed <= stock', s.claimed <= stock);
  inv('no oversell: issued <= stock', s.issued <= stock);
  if (nJoiners !== null) {
    inv(`issued == min(stock, distinct joiners) (${s.issued} == min(${stock}, ${nJoiners}))`,
      s.issued === Math.min(stock, nJoiners));
  }
  if (nTokens !== null) inv(`tokens received by clients == issued (${nTokens} == ${s.issued})`, nTokens === s.issued);
  inv(`nothing in flight (inFlight ${s.inFlight})`, s.inFlight === 0);
  inv(`claimed == issued (${s.claimed} == ${s.issued})`, s.claimed === s.issued);
  inv(`MySQL converged: recorded == issued (${s.recorded} == ${s.issued})`, s.recorded === s.issued);
  inv(`MySQL converged: surplus == stock - claimed (${s.surplus} == ${stock} - ${s.claimed})`,
    s.surplus === stock - s.claimed);

  closeActivity(activityId);
}

// The thresholds every scenario shares: the invariants of verify must all
// hold, and teardown must have checked them.
export const invariantThresholds = {
  'checks{scope:invariant}': ['rate==1'],
  invariants_verified: ['count>0'],
};
