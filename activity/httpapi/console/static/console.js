// seckill console: a single-page app over the admin API (API.md), served by
// the service itself under /console/. No framework and no build step.
// Everything from the server reaches the page as text (h() appends text
// nodes); nothing goes through innerHTML.

const API = '/api/v1/admin/activities';
const TOKENS_API = '/api/v1/admin/tokens';
const ME_API = '/api/v1/admin/me';
const AUDIT_API = '/api/v1/admin/audit';
const TOKEN_KEY = 'seckill.adminToken';
const ME_KEY = 'seckill.me'; // {name, role} of the token, from /me
const POLL_MS = 1000;
const SPARK_SAMPLES = 60;
const STATES = ['draft', 'approved', 'refused', 'open', 'closed'];
const PAGE_SIZES = [10, 20, 50];
const AUDIT_PAGE = 20;

// ROLES says which roles, besides admin, may do what: the matrix of the
// admin API (README, openapi.yaml). The server decides; the console only
// disables what would be refused and says why.
const READERS = ['viewer', 'editor', 'approver', 'operator'];
const ROLES = {
  read: [...READERS, 'draw'],
  audit: READERS,
  create: ['editor'],
  edit: ['editor'], // a draft, autoOpen included
  approve: ['approver'],
  refuse: ['approver'],
  draft: ['editor', 'approver'], // back to draft, from approved
  duplicate: ['editor'],
  open: ['operator'],
  close: ['operator'],
  stock: ['operator'],
  autoOpen: ['operator'], // of an approved activity
  export: [...READERS, 'draw'],
  redeem: ['draw'],
};

// ACTIONS is the admin state machine of API.md: each action and the one
// state it is allowed from.
const ACTIONS = [
  {name: 'approve', label: 'Approve', from: 'draft', style: 'primary',
    ask: a => `Approve “${a.name}”? It can then be opened for joining.`},
  {name: 'refuse', label: 'Refuse', from: 'draft', style: 'danger',
    ask: a => `Refuse “${a.name}”? A refused activity can never be opened or edited (it can still be duplicated into a new draft).`},
  {name: 'draft', label: 'Back to draft', from: 'approved', style: '',
    ask: a => `Send “${a.name}” back to draft? It can then be edited, and must be approved again before it opens.`},
  {name: 'open', label: 'Open', from: 'approved', style: 'primary',
    ask: a => openQuestion(a)},
  {name: 'close', label: 'Close', from: 'open', style: 'danger',
    ask: a => `Close “${a.name}”? Joins stop at once. This cannot be undone.`},
];

// openQuestion is the confirmation of Open: when joining starts, and a
// warning when the window is over or far off.
function openQuestion(a) {
  const now = Date.now(), begin = Date.parse(a.beginAt), end = Date.parse(a.endAt);
  const open = `Open “${a.name}”? Its ${fmtInt(a.stock)} slots are loaded`;
  if (end <= now) return `${open}, but its window ended ${fmtTime(a.endAt)}: nobody will be able to join. ` +
    'Send it back to draft and correct the window instead.';
  if (begin <= now) return `${open} and users can join at once, until ${fmtTime(a.endAt)}.`;
  return `${open} and users can join from ${fmtTime(a.beginAt)} (in ${fmtDuration((begin - now) / 1000)}) until ${fmtTime(a.endAt)}.`;
}

// FIELDS are the fields of create and edit, by their API names. check
// returns what is wrong with a value read from the form, in the field's own
// words, or '' when it is fine. The rules are the server's
// (activity.validate): lengths in characters (code points, as Go counts
// runes), not UTF-16 units; years 2000 to 9999 in UTC.
const MAX_NAME = 128, MAX_DESCRIPTION = 2000, MAX_STOCK = 10000000, MAX_PER_USER = 1000, MAX_SHARDS = 64;
const chars = v => [...v].length;
const FIELDS = [
  {name: 'name', label: 'Name', type: 'text', wide: true, required: true, hint: '1–128 characters, shown to the staff only',
    check: v => v === '' ? 'Enter a name.' : chars(v) > MAX_NAME ? `Name is ${fmtInt(chars(v))} characters long: at most 128.` : ''},
  {name: 'description', label: 'Description', type: 'textarea', wide: true, hint: 'Optional, up to 2,000 characters',
    check: v => chars(v) > MAX_DESCRIPTION ? `Description is ${fmtInt(chars(v))} characters long: at most 2,000.` : ''},
  {name: 'stock', label: 'Stock', type: 'number', required: true, hint: 'Slots to hand out, 1–10,000,000',
    check: v => v === null ? 'Enter the stock: how many slots to hand out, 1 to 10,000,000.'
      : !Number.isInteger(v) || v < 1 || v > MAX_STOCK ? 'Stock must be a whole number from 1 to 10,000,000.' : ''},
  {name: 'perUserLimit', label: 'Per-user limit', type: 'number', required: true, hint: 'Tokens one user may hold, 1–1,000',
    check: v => v === null ? 'Enter the per-user limit: how many tokens one user may hold, 1 to 1,000.'
      : !Number.isInteger(v) || v < 1 || v > MAX_PER_USER ? 'Per-user limit must be a whole number from 1 to 1,000.' : ''},
  {name: 'beginAt', label: 'Begins', type: 'datetime-local', required: true, hint: 'When users may start joining',
    check: v => v === null ? 'Enter when it begins: a date and a time.'
      : utcYear(v) < 2000 ? 'Begins must be in the years 2000 to 9999 (UTC).' : ''},
  {name: 'endAt', label: 'Ends', type: 'datetime-local', required: true, hint: 'After Begins',
    check: v => v === null ? 'Enter when it ends: a date and a time.'
      : utcYear(v) > 9999 ? 'Ends must be in the years 2000 to 9999 (UTC).' : ''},
  {name: 'shards', label: 'Shards', type: 'number', required: true,
    hint: 'Spread the stock over this many Redis shards for a very hot sale; leave 1 unless told otherwise. 1–64',
    check: v => v === null ? 'Enter the number of shards, 1 to 64: leave 1 unless told otherwise.'
      : !Number.isInteger(v) || v < 1 || v > MAX_SHARDS ? 'Shards must be a whole number from 1 to 64.' : ''},
];

// utcYear is the year of an ISO time in UTC.
function utcYear(v) { return new Date(v).getUTCFullYear(); }

// The range of the date inputs: four-digit years only.
const DATE_MIN = '2000-01-01T00:00';
const DATE_MAX = '9999-12-31T23:59';
// SOON is how close to its beginning a window is worth a warning.
const SOON_MS = 15 * 60e3;

const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
// zoneName is the short name of the browser's zone now ("GMT+5:30", "CET").
const zoneName = (new Intl.DateTimeFormat(undefined, {timeZoneName: 'short'}).formatToParts(new Date())
  .find(p => p.type === 'timeZoneName') || {value: ''}).value;
// Every time shown carries its zone.
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {year: 'numeric', month: 'short', day: 'numeric',
  hour: 'numeric', minute: '2-digit', timeZoneName: 'short'});
const clockFormat = new Intl.DateTimeFormat(undefined, {hour: 'numeric', minute: '2-digit', second: '2-digit', timeZoneName: 'short'});
const secondsFormat = new Intl.DateTimeFormat(undefined, {year: 'numeric', month: 'short', day: 'numeric',
  hour: 'numeric', minute: '2-digit', second: '2-digit', timeZoneName: 'short'});
const intFormat = new Intl.NumberFormat();

// --- DOM helpers --------------------------------------------------------

// h builds an element: props become properties or attributes (on* become
// listeners), children are elements or text.
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  el.append(...children.flat().filter(c => c !== null && c !== undefined && c !== false));
  return el;
}

// s builds an SVG element.
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setProps(el, attrs);
  el.append(...children);
  return el;
}

function setProps(el, props) {
  for (const [k, v] of Object.entries(props)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

const $ = id => document.getElementById(id);

function fmtInt(n) { return typeof n === 'number' ? intFormat.format(n) : '—'; }
function fmtTime(iso) { return iso ? dateTimeFormat.format(new Date(iso)) : '—'; }

function fmtWindow(begin, end) {
  const b = new Date(begin), e = new Date(end);
  return dateTimeFormat.formatRange ? dateTimeFormat.formatRange(b, e) : `${fmtTime(begin)} – ${fmtTime(end)}`;
}

function ago(iso) {
  const sec = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (sec < 2) return 'just now';
  if (sec < 120) return `${sec} s ago`;
  if (sec < 7200) return `${Math.round(sec / 60)} min ago`;
  return `${Math.round(sec / 3600)} h ago`;
}

// fmtDuration says a number of seconds as "2 d 3 h", "4 min 12 s", "9 s".
function fmtDuration(sec) {
  sec = Math.max(0, Math.round(sec));
  const d = Math.floor(sec / 86400), hr = Math.floor(sec % 86400 / 3600), m = Math.floor(sec % 3600 / 60), x = sec % 60;
  if (d) return hr ? `${d} d ${hr} h` : `${d} d`;
  if (hr) return m ? `${hr} h ${m} min` : `${hr} h`;
  if (m) return x ? `${m} min ${x} s` : `${m} min`;
  return `${x} s`;
}

// toLocalInput turns an RFC 3339 time into the value of a datetime-local
// input in the browser's time zone.
function toLocalInput(iso) {
  const d = new Date(iso);
  const p = n => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

// fromLocalInput turns a datetime-local value, a wall-clock time of the
// browser's time zone, into UTC RFC 3339; null when it is not a time.
function fromLocalInput(v) {
  const d = new Date(v); // a date-time without an offset is local time
  if (!v || Number.isNaN(d.getTime())) return null;
  return d.toISOString().replace('.000Z', 'Z');
}

function badge(state) { return h('span', {class: `badge ${state}`, 'data-state': state}, state); }

// --- the API --------------------------------------------------------------

class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

// me is who the token is, as /me answered at sign-in: {name, role}, or
// null when not known.
function me() {
  try {
    const m = JSON.parse(sessionStorage.getItem(ME_KEY) || 'null');
    return m && typeof m.name === 'string' && typeof m.role === 'string' ? m : null;
  } catch {
    return null;
  }
}

// may reports whether the signed-in role may do what (a key of ROLES).
function may(what) {
  const m = me();
  return !!m && (m.role === 'admin' || ROLES[what].includes(m.role));
}

// listOr joins words as "a, b or c".
function listOr(words) {
  return words.length < 2 ? words.join('') : `${words.slice(0, -1).join(', ')} or ${words[words.length - 1]}`;
}

// roleNote is the sentence under a page's buttons that says which of them
// the role may not use; empty when it may use them all.
function roleNote(verbs) {
  return verbs.length ? `Your role (${me().role}) may not ${listOr(verbs)}.` : '';
}

// request calls the admin API and returns the decoded answer; a non-2xx
// answer throws an APIError with the API's code and message (and the
// error's other fields in e.detail). A 401 with the stored token signs out.
async function request(method, path, body, tok = token()) {
  const resp = await send(method, path, body, tok);
  let data = null;
  try { data = await resp.json(); } catch { /* not JSON */ }
  if (resp.ok) return data;
  throw apiError(resp, data, tok);
}

// send makes one call of the API with the token; it throws an APIError
// when the server cannot be reached.
async function send(method, path, body, tok = token(), accept = 'application/json') {
  const headers = {Authorization: `Bearer ${tok}`, Accept: accept};
  const init = {method, headers, cache: 'no-store'};
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  try {
    return await fetch(path, init);
  } catch (e) {
    throw new APIError(0, 'network', `Cannot reach the server (${e.message}).`);
  }
}

// apiError is the APIError of a non-2xx answer whose body was data.
function apiError(resp, data, tok) {
  const err = (data && data.error) || {};
  const e = new APIError(resp.status, err.code || `http_${resp.status}`, err.message || `HTTP ${resp.status}`);
  e.detail = err;
  if (resp.status === 401 && tok === token() && tok !== '') {
    signOut('The server no longer accepts your token: sign in again.');
  }
  return e;
}

// DEPENDENCIES names each dependency the API may say is down, and what its
// outage means for the crowd and for the staff.
const DEPENDENCIES = {
  redis: {name: 'Redis', crowd: 'nobody can join: every join is refused',
    staff: 'slots cannot be loaded, counted or given out'},
  mysql: {name: 'MySQL', crowd: 'joins go on, but the numbers saved to the database are late',
    staff: 'activities cannot be created, changed, opened or closed'},
  kafka: {name: 'Kafka', crowd: 'joins cannot be confirmed, so they are refused',
    staff: 'winners are not passed on'},
};

// dependencyOf is the dependency a 503 names ("redis", "mysql", "kafka"),
// from its dependency field, else from its message; '' when it names none.
function dependencyOf(e) {
  const d = e && e.detail && e.detail.dependency;
  if (DEPENDENCIES[d]) return d;
  const m = /\b(redis|mysql|kafka)\b/i.exec((e && e.message) || '');
  return m ? m[1].toLowerCase() : '';
}

// describe turns an APIError into a sentence for a notice.
function describe(e) {
  switch (e.code) {
    case 'unavailable': {
      const d = DEPENDENCIES[dependencyOf(e)];
      return d
        ? `${d.name} is down: ${d.staff}, and ${d.crowd}. Nothing was changed; try again when it is back.`
        : 'The server is busy or a service it needs is down. Nothing was changed; try again in a moment.';
    }
    case 'invalid_state': return 'Not allowed in the activity’s current state: someone may have changed it meanwhile.';
    case 'not_found': return 'No such activity.';
    case 'stock_conflict':
      if (e.detail.lowest != null && e.detail.lowest !== e.detail.claimed) {
        return `While it is open, the stock of this activity can only be raised: it is spread over shards (${fmtInt(e.detail.claimed)} slots are claimed).`;
      }
      return `${fmtInt(e.detail.claimed)} slots are claimed already: the stock can go down to ${fmtInt(e.detail.claimed)} at the lowest.`;
    case 'already_redeemed': return `This token was redeemed already, on ${fmtTime(e.detail.redeemedAt)}.`;
    case 'forbidden': return `Not allowed: ${e.message}.`;
    case 'rate_limited': return 'Too many failed sign-ins from this address: the server refuses it for a while. Wait a minute, then try again.';
    default: return e.message;
  }
}

// --- notices and confirmation ----------------------------------------------

function notice(text, kind = 'warn') {
  const n = $('notice');
  n.textContent = text;
  n.className = `notice ${kind}`;
  n.hidden = !text;
}

// confirmAction shows the confirmation dialog and resolves to true when
// the user confirms.
function confirmAction(title, text, okLabel, style) {
  const dialog = $('confirm');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  const ok = $('confirm-ok');
  ok.textContent = okLabel;
  ok.className = style === 'danger' ? 'danger' : 'primary';
  return new Promise(resolve => {
    const done = value => () => {
      ok.onclick = $('confirm-cancel').onclick = dialog.oncancel = null;
      dialog.close();
      resolve(value);
    };
    ok.onclick = done(true);
    $('confirm-cancel').onclick = done(false);
    dialog.oncancel = done(false); // Escape
    dialog.showModal();
    $('confirm-cancel').focus();
  });
}

// --- routing ---------------------------------------------------------------

let view = null; // the current view: {stop()}
let signInMessage = '';
let nextNotice = null; // {text, kind}: the notice of the next page

function signOut(message = '') {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(ME_KEY);
  signInMessage = message;
  route();
}

function route() {
  if (view) view.stop();
  view = null;
  notice(nextNotice ? nextNotice.text : '', nextNotice ? nextNotice.kind : 'warn');
  nextNotice = null;
  document.title = 'seckill console';
  const dialog = $('confirm');
  if (dialog.open) dialog.close();
  const main = $('main');
  main.replaceChildren();
  const signedIn = token() !== '';
  document.body.classList.toggle('signed-in', signedIn);
  if (!signedIn) {
    view = signInView(main);
    return;
  }
  if (!me()) {
    view = whoView(main);
    return;
  }
  showWho();
  let [path, query] = (location.hash.slice(1) || '/').split('?');
  const params = new URLSearchParams(query || '');
  if (path === '/' && !may('read')) {
    // The draw may not list activities: its page is the tokens'.
    path = '/tokens';
    history.replaceState(null, '', '#/tokens');
  }
  let m;
  if (path !== '/tokens' && !may('read')) {
    main.append(h('p', {class: 'card', id: 'role-page-note'}, `Your role (${me().role}) may not read activities. `,
      h('a', {href: '#/tokens'}, 'Look up a token')));
  } else if (path === '/' || path === '/activities') {
    view = listView(main, params);
  } else if (path === '/new') {
    view = formView(main, null);
  } else if ((m = path.match(/^\/activities\/(\d+)$/))) {
    view = liveView(main, Number(m[1]));
  } else if ((m = path.match(/^\/activities\/(\d+)\/edit$/))) {
    view = formView(main, Number(m[1]));
  } else if (path === '/tokens') {
    view = tokenView(main, params.get('token') || '');
  } else {
    main.append(h('p', {class: 'card'}, 'No such page. ', h('a', {href: '#/'}, 'Back to the activities')));
  }
}

// showWho says in the header who is signed in, and shows the links of
// the pages the role may use.
function showWho() {
  const m = me();
  $('whoami').textContent = `Signed in as ${m.name} (${m.role})`;
  $('nav-activities').hidden = !may('read');
  $('nav-new').hidden = !may('create');
}

// whoView asks /me who the stored token is (a tab signed in before the
// console kept it), then routes.
function whoView(main) {
  const life = lifetime();
  main.append(h('p', {class: 'card muted'}, 'Signing in…'));
  (async () => {
    try {
      const m = await request('GET', ME_API);
      if (!life.alive()) return;
      sessionStorage.setItem(ME_KEY, JSON.stringify({name: m.name, role: m.role}));
      route();
    } catch (e) {
      if (life.alive() && token()) notice(describe(e), 'error');
    }
  })();
  return life;
}

// A view's async work checks alive() after each await: the user may have
// moved on.
function lifetime() {
  let alive = true, timer = 0;
  return {
    alive: () => alive,
    later(fn, ms) { clearTimeout(timer); if (alive) timer = setTimeout(fn, ms); },
    stop() { alive = false; clearTimeout(timer); },
  };
}

// --- sign in ---------------------------------------------------------------

function signInView(main) {
  const input = h('input', {id: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'off',
    required: true, 'aria-describedby': 'signin-text signin-error'});
  const error = h('p', {id: 'signin-error', class: 'form-error', role: 'alert'});
  notice(signInMessage);
  signInMessage = '';
  const button = h('button', {type: 'submit', id: 'signin-submit', class: 'primary'}, 'Sign in');
  const form = h('form', {id: 'signin', class: 'card narrow', novalidate: true},
    h('h1', {}, 'Sign in'),
    h('p', {class: 'muted', id: 'signin-text'}, 'Enter your personal token, the one your administrator gave you ' +
      '(or, if you run the service yourself, the admin token it printed when it started). ' +
      'It is kept in this browser tab only and forgotten when the tab closes.'),
    h('label', {for: 'token'}, 'Your personal token or the admin token'),
    input, error,
    h('div', {class: 'buttons'}, button));
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    const t = input.value.trim();
    error.textContent = '';
    if (!t) {
      error.textContent = 'Enter the admin token or your personal token.';
      return;
    }
    button.disabled = true;
    try {
      // /me answers every valid token, whatever its role.
      const m = await request('GET', ME_API, undefined, t);
      sessionStorage.setItem(TOKEN_KEY, t);
      sessionStorage.setItem(ME_KEY, JSON.stringify({name: m.name, role: m.role}));
      route();
    } catch (e) {
      error.textContent = e.status === 401
        ? 'Wrong token: the server refused it. Check the token and try again.'
        : e.status === 429
          ? 'Too many failed sign-ins from this address: the server refuses every sign-in from it for a while, even with the right token. Wait a minute, then try again.'
          : describe(e);
      input.select();
    } finally {
      button.disabled = false;
    }
  });
  main.append(form);
  input.focus();
  return {stop() {}};
}

// --- activities list ------------------------------------------------------

// SORTS are the orders of the list, by the API's sort parameter.
const SORTS = [
  {value: 'created', label: 'Newest created first'},
  {value: 'beginAt', label: 'Begins soonest first'},
  {value: '-beginAt', label: 'Begins latest first'},
];

// listHash is the list's address for a filter, an order and a page.
function listHash({state = '', q = '', sort = 'created', limit = PAGE_SIZES[0], offset = 0}) {
  const p = new URLSearchParams();
  if (state) p.set('state', state);
  if (q) p.set('q', q);
  if (sort !== 'created') p.set('sort', sort);
  if (limit !== PAGE_SIZES[0]) p.set('limit', limit);
  if (offset > 0) p.set('offset', offset);
  const str = p.toString();
  return str ? `#/?${str}` : '#/';
}

// searchFocus is set while the user types in the search box, so that the
// list drawn for the new words keeps the box focused.
let searchFocus = false;

// listCounts says, for a row of the list, what a sale gave: its winners,
// and whether they are saved to the database.
function listCounts(a) {
  const st = a.stats;
  if ((a.state !== 'open' && a.state !== 'closed') || !st) return '—';
  const down = (a.unavailable || []).map(d => DEPENDENCIES[d] ? DEPENDENCIES[d].name : d);
  if (typeof st.issued !== 'number') return down.length ? `? (${listOr(down)} down)` : '—';
  const winners = `${fmtInt(st.issued)} of ${fmtInt(a.stock)}`;
  if (typeof st.recorded !== 'number') return `${winners} (${listOr(down)} down)`;
  return st.recorded >= st.issued ? `${winners} ✓ saved` : `${winners}, ${fmtInt(st.recorded)} saved`;
}

function listView(main, params) {
  const life = lifetime();
  const cur = {
    state: STATES.includes(params.get('state')) ? params.get('state') : '',
    q: (params.get('q') || '').slice(0, 128),
    sort: SORTS.some(x => x.value === params.get('sort')) ? params.get('sort') : 'created',
    limit: PAGE_SIZES.includes(Number(params.get('limit'))) ? Number(params.get('limit')) : PAGE_SIZES[0],
    offset: Math.max(0, Math.floor(Number(params.get('offset')) || 0)),
  };
  const go = change => { location.hash = listHash({...cur, offset: 0, ...change}); };
  const {state, limit, offset} = cur;

  const search = h('input', {id: 'search', type: 'search', value: cur.q, maxlength: 128, autocomplete: 'off',
    spellcheck: 'false', placeholder: 'Part of a name'});
  let typing = 0;
  search.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => { searchFocus = true; go({q: search.value.trim()}); }, 400);
  });
  const searchForm = h('form', {role: 'search', class: 'search', id: 'search-form', onsubmit: ev => {
    ev.preventDefault(); clearTimeout(typing); go({q: search.value.trim()});
  }}, h('label', {for: 'search'}, 'Search by name'), search);
  const stateSelect = h('select', {id: 'filter-state', onchange: () => go({state: stateSelect.value})},
    h('option', {value: ''}, 'All states'),
    STATES.map(st => h('option', {value: st, selected: st === state}, st)));
  const sortSelect = h('select', {id: 'sort', onchange: () => go({sort: sortSelect.value})},
    SORTS.map(x => h('option', {value: x.value, selected: x.value === cur.sort}, x.label)));
  const sizeSelect = h('select', {id: 'page-size', onchange: () => go({limit: Number(sizeSelect.value)})},
    PAGE_SIZES.map(n => h('option', {value: n, selected: n === limit}, `${n} per page`)));
  const body = h('tbody', {id: 'activity-rows'});
  const table = h('table', {class: 'list', id: 'activities'},
    h('caption', {class: 'visually-hidden'}, 'Activities'),
    h('thead', {}, h('tr', {},
      h('th', {scope: 'col'}, 'Name'), h('th', {scope: 'col'}, 'State'), h('th', {scope: 'col'}, `Window (${zoneName})`),
      h('th', {scope: 'col', class: 'num'}, 'Stock'), h('th', {scope: 'col', class: 'num'}, 'Winners'))),
    body);
  const range = h('span', {id: 'page-range', class: 'muted', 'aria-live': 'polite'});
  const older = cur.sort === 'created';
  const prev = h('button', {type: 'button', id: 'page-prev', disabled: offset === 0,
    onclick: () => { location.hash = listHash({...cur, offset: Math.max(0, offset - limit)}); }}, older ? '← Newer' : '← Previous');
  const next = h('button', {type: 'button', id: 'page-next', disabled: true,
    onclick: () => { location.hash = listHash({...cur, offset: offset + limit}); }}, older ? 'Older →' : 'Next →');

  main.append(
    h('div', {class: 'toolbar'},
      h('h1', {}, 'Activities'),
      may('create')
        ? h('a', {class: 'button primary', href: '#/new', id: 'new-activity'}, 'New activity')
        : h('button', {type: 'button', class: 'primary', id: 'new-activity', disabled: true, 'data-disabled-by': 'role',
          'aria-describedby': 'list-role-note'}, 'New activity')),
    may('create') ? null : h('p', {class: 'role-note', id: 'list-role-note'}, roleNote(['create activities'])),
    h('div', {class: 'toolbar filters'},
      searchForm,
      h('label', {}, 'State', stateSelect),
      h('label', {}, 'Order', sortSelect),
      h('label', {}, 'Page size', sizeSelect),
      h('button', {type: 'button', id: 'refresh', onclick: () => route()}, 'Refresh')),
    h('div', {class: 'card list-card'}, table, h('p', {class: 'empty', id: 'list-status', role: 'status'}, 'Loading…')),
    h('div', {class: 'pager'}, prev, range, next));
  if (searchFocus) {
    searchFocus = false;
    search.focus();
    search.setSelectionRange(search.value.length, search.value.length);
  }

  (async () => {
    const q = new URLSearchParams({limit: limit + 1, offset}); // one more tells whether there is a next page
    if (state) q.set('state', state);
    if (cur.q) q.set('q', cur.q);
    if (cur.sort !== 'created') q.set('sort', cur.sort);
    let answer, list;
    try {
      answer = await request('GET', `${API}?${q}`);
      list = answer.activities || [];
    } catch (e) {
      if (!life.alive()) return;
      const d = DEPENDENCIES[dependencyOf(e)];
      $('list-status').textContent = e.code === 'unavailable' && d
        ? `${d.name} is down: the list cannot be read now. For the crowd it means ${d.crowd}. Press Refresh in a moment.`
        : describe(e);
      return;
    }
    if (!life.alive()) return;
    const total = typeof answer.total === 'number' ? answer.total : null;
    const more = total !== null ? offset + limit < total : list.length > limit;
    list = list.slice(0, limit);
    next.disabled = !more;
    range.textContent = list.length
      ? `${fmtInt(offset + 1)}–${fmtInt(offset + list.length)}${total !== null ? ` of ${fmtInt(total)}` : ''}`
      : total !== null ? `${fmtInt(total)} in all` : '';
    const status = $('list-status');
    if (list.length === 0) {
      status.textContent = offset > 0 ? 'No more activities.'
        : cur.q ? `No activity${state ? ` in state ${state}` : ''} has “${cur.q}” in its name.`
          : state ? `No activity is ${state}.` : 'No activities yet: create the first one.';
    } else {
      status.remove();
    }
    for (const a of list) {
      const counts = h('td', {class: 'num counts', 'data-label': 'Winners'}, '…');
      body.append(h('tr', {'data-id': a.id},
        h('td', {class: 'name', 'data-label': 'Name'}, h('a', {href: `#/activities/${a.id}`}, a.name)),
        h('td', {'data-label': 'State'}, badge(a.state)),
        h('td', {class: 'window', 'data-label': 'Window'}, fmtWindow(a.beginAt, a.endAt)),
        h('td', {class: 'num', 'data-label': 'Stock'}, fmtInt(a.stock)),
        counts));
      if (a.state !== 'open' && a.state !== 'closed') {
        counts.textContent = '—';
        continue;
      }
      // The list answers no stats: each visible row of a sale asks for its own.
      request('GET', `${API}/${a.id}`).then(full => {
        counts.textContent = listCounts(full);
      }, e => {
        const d = DEPENDENCIES[dependencyOf(e)];
        counts.textContent = d ? `? (${d.name} down)` : '? (no answer)';
      });
    }
  })();
  return life;
}

// --- create and edit --------------------------------------------------------

// fieldWords turns an API message about a field into the form's words:
// "endAt", "must be after beginAt" → "Ends must be after Begins".
function fieldWords(field, message) {
  const label = f => (FIELDS.find(x => x.name === f) || {label: f}).label;
  let text = message.replace(/\b(name|description|stock|perUserLimit|beginAt|endAt|shards)\b/g, label)
    .replace(/\b(\d{5,})\b/g, n => fmtInt(Number(n)));
  if (field) text = `${label(field)} ${text}`;
  text = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

// windowWarning says what is odd about a window that is valid: over
// already, begun already, or beginning within minutes; '' when nothing is.
// ended tells the caller that nobody could ever join.
function windowWarning(begin, end) {
  if (begin === null || end === null || end <= begin) return {text: '', ended: false};
  const now = Date.now(), b = Date.parse(begin), e = Date.parse(end);
  if (e <= now) {
    return {ended: true, text: `This window is in the past: it ended ${fmtDuration((now - e) / 1000)} ago, ` +
      'so nobody could ever join. Change Begins and Ends.'};
  }
  if (b <= now) {
    return {ended: false, text: `Begins is in the past (${fmtDuration((now - b) / 1000)} ago): once opened, joining starts at once ` +
      `and ends in ${fmtDuration((e - now) / 1000)}.`};
  }
  if (b - now < SOON_MS) {
    return {ended: false, text: `Begins in ${fmtDuration((b - now) / 1000)}: leave time for the approval and the opening.`};
  }
  return {text: '', ended: false};
}

function formView(main, id) {
  const life = lifetime();
  if (!may(id ? 'edit' : 'create')) {
    main.append(h('p', {class: 'card role-note', id: 'form-role-note'}, roleNote([id ? 'edit activities' : 'create activities']), ' ',
      h('a', {href: id ? `#/activities/${id}` : '#/'}, id ? 'Back to the activity' : 'Back to the activities')));
    return life;
  }
  const inputs = {}, errors = {}, showUTC = {};
  let original = null; // the activity being edited
  const warning = h('p', {id: 'window-warning', class: 'field-warning', role: 'status'});

  const fields = FIELDS.map(f => {
    const described = [`f-${f.name}-hint`, `f-${f.name}-error`];
    if (f.type === 'datetime-local') described.push('window-warning');
    const common = {id: `f-${f.name}`, name: f.name, required: f.required, 'aria-required': f.required ? 'true' : null,
      'aria-describedby': described.join(' ')};
    const input = f.type === 'textarea'
      // maxlength counts UTF-16 units, two for an emoji: twice the
      // characters allowed, so that it never cuts a name the server takes;
      // check tells the exact bound.
      ? h('textarea', {...common, rows: 3, maxlength: 2 * MAX_DESCRIPTION})
      : h('input', {...common, type: f.type, autocomplete: 'off',
        step: f.type === 'number' ? 1 : null, min: f.type === 'number' ? 1 : f.type === 'datetime-local' ? DATE_MIN : null,
        max: f.name === 'stock' ? MAX_STOCK : f.name === 'perUserLimit' ? MAX_PER_USER : f.name === 'shards' ? MAX_SHARDS : f.type === 'datetime-local' ? DATE_MAX : null,
        maxlength: f.name === 'name' ? 2 * MAX_NAME : null,
        inputmode: f.type === 'number' ? 'numeric' : null});
    inputs[f.name] = input;
    errors[f.name] = h('p', {id: `f-${f.name}-error`, class: 'field-error'});
    let hint = f.hint;
    let utc = null, control = input;
    if (f.type === 'datetime-local') {
      hint = `${f.hint}. In ${timeZone} (${zoneName})`;
      utc = h('span', {class: 'utc'});
      const show = () => { const v = fromLocalInput(input.value); utc.textContent = v ? ` = ${v} UTC` : ''; };
      input.addEventListener('input', show);
      input.addEventListener('change', show);
      showUTC[f.name] = show;
      control = h('div', {class: 'with-zone'}, input, h('span', {class: 'zone', 'aria-hidden': 'true'}, zoneName));
    }
    input.addEventListener('input', () => { errors[f.name].textContent = ''; input.removeAttribute('aria-invalid'); });
    return h('div', {class: `field${f.wide ? ' wide' : ''}`, id: `field-${f.name}`},
      h('label', {for: input.id}, f.label, f.required ? h('span', {class: 'req'}, ' *', h('span', {class: 'visually-hidden'}, ' (required)')) : null),
      control,
      h('p', {class: 'hint', id: `f-${f.name}-hint`}, hint || '', utc),
      errors[f.name]);
  });
  const formError = h('p', {id: 'form-error', class: 'form-error', role: 'alert'});
  const submit = h('button', {type: 'submit', class: 'primary', id: 'save'}, id ? 'Save changes' : 'Create draft');
  const cancel = h('a', {class: 'button', href: id ? `#/activities/${id}` : '#/'}, 'Cancel');
  const form = h('form', {id: 'activity-form', class: 'card', novalidate: true, 'aria-describedby': 'form-required'},
    h('p', {class: 'muted required-note', id: 'form-required'}, 'Fields marked * are required. Times are in ', timeZone, ` (${zoneName}).`),
    h('div', {class: 'form-grid'}, fields), warning, formError, h('div', {class: 'form-actions'}, submit, cancel));
  const title = h('h1', {}, id ? 'Edit activity' : 'New activity');
  main.append(h('nav', {class: 'crumbs', 'aria-label': 'breadcrumbs'}, h('a', {href: '#/'}, 'Activities'), ' / ', id ? `#${id}` : 'new'),
    h('div', {class: 'toolbar'}, title), form);

  // read is the form's values: numbers, UTC times and trimmed names, null
  // for an empty number or time.
  const read = () => {
    const out = {};
    for (const f of FIELDS) {
      const raw = inputs[f.name].value;
      if (f.type === 'number') out[f.name] = raw.trim() === '' ? null : Number(raw);
      else if (f.type === 'datetime-local') out[f.name] = raw === '' ? null : fromLocalInput(raw);
      else out[f.name] = f.name === 'name' ? raw.trim() : raw;
    }
    return out;
  };

  const warn = () => {
    const v = read();
    warning.textContent = windowWarning(v.beginAt, v.endAt).text;
  };
  inputs.beginAt.addEventListener('change', warn);
  inputs.endAt.addEventListener('change', warn);
  inputs.beginAt.addEventListener('input', warn);
  inputs.endAt.addEventListener('input', warn);

  const fill = a => {
    for (const f of FIELDS) {
      const v = a[f.name];
      inputs[f.name].value = f.type === 'datetime-local' ? (v ? toLocalInput(v) : '') : (v ?? '');
      if (showUTC[f.name]) showUTC[f.name]();
    }
    warn();
  };

  if (id) {
    form.hidden = true;
    (async () => {
      try {
        original = await request('GET', `${API}/${id}`);
      } catch (e) {
        if (life.alive()) notice(describe(e), 'error');
        return;
      }
      if (!life.alive()) return;
      title.textContent = `Edit “${original.name}”`;
      fill(original);
      form.hidden = false;
      if (original.state !== 'draft') {
        formError.textContent = original.state === 'approved'
          ? 'This activity is approved: send it back to draft on its page to edit it.'
          : `This activity is ${original.state}: only a draft can be edited. Duplicate it on its page to start a new draft from it.`;
        submit.disabled = true;
      }
      inputs.name.focus();
    })();
  } else {
    // A starting point: the next full hour, for one hour.
    const begin = new Date();
    begin.setMinutes(60, 0, 0);
    fill({perUserLimit: 1, shards: 1, beginAt: begin.toISOString(), endAt: new Date(begin.getTime() + 3600e3).toISOString()});
    inputs.name.focus();
  }

  const clearErrors = () => {
    formError.textContent = '';
    for (const f of FIELDS) {
      errors[f.name].textContent = '';
      inputs[f.name].removeAttribute('aria-invalid');
    }
  };

  // showErrors shows every error at once, each under its field, and sums
  // them up above the buttons; the first field in error gets the focus.
  const showErrors = (byField, general = '') => {
    const names = [];
    for (const f of FIELDS) {
      if (!byField[f.name]) continue;
      errors[f.name].textContent = byField[f.name];
      inputs[f.name].setAttribute('aria-invalid', 'true');
      names.push(f.label);
    }
    formError.textContent = general || (names.length === 1 ? `Correct ${names[0]}, below its field.`
      : `Correct ${names.length} fields: ${names.join(', ')}.`);
    const first = FIELDS.find(f => byField[f.name]);
    if (first) inputs[first.name].focus();
  };

  // check is every error of the form's values, by field.
  const check = v => {
    const out = {};
    for (const f of FIELDS) {
      const e = f.check(v[f.name]);
      if (e) out[f.name] = e;
    }
    if (!out.beginAt && !out.endAt && v.endAt <= v.beginAt) out.endAt = 'Ends must be after Begins.';
    return out;
  };

  // changes are the fields to send. An edit sends the fields that changed
  // only, so that what the form cannot show (seconds of a time) is kept.
  const changes = v => {
    const out = {};
    for (const f of FIELDS) {
      if (original) {
        const raw = inputs[f.name].value;
        const was = f.type === 'datetime-local' ? toLocalInput(original[f.name]) : original[f.name] ?? '';
        if ((f.type === 'datetime-local' ? raw : v[f.name]) === was) continue;
      }
      if (v[f.name] !== null) out[f.name] = v[f.name];
    }
    return out;
  };

  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    clearErrors();
    const v = read();
    const wrong = check(v);
    if (Object.keys(wrong).length) {
      showErrors(wrong);
      return;
    }
    const out = changes(v);
    if (original && Object.keys(out).length === 0) {
      location.hash = `#/activities/${id}`;
      return;
    }
    const w = windowWarning(v.beginAt, v.endAt);
    if (w.ended && !await confirmAction('The window is in the past', `${w.text} Save it all the same?`, 'Save anyway', 'danger')) {
      inputs.beginAt.focus();
      return;
    }
    if (!life.alive()) return;
    submit.disabled = true;
    try {
      const a = id ? await request('PATCH', `${API}/${id}`, out) : await request('POST', API, out);
      if (life.alive()) location.hash = `#/activities/${a.id}`;
    } catch (e) {
      if (!life.alive()) return;
      if (e.code === 'invalid_request') {
        // "<field>: <text>": the message starts with the field's name.
        const m = e.message.match(/^([A-Za-z][A-Za-z0-9-]*): (.*)$/s);
        if (m && inputs[m[1]]) showErrors({[m[1]]: fieldWords(m[1], m[2])});
        else formError.textContent = fieldWords('', e.message);
      } else if (e.code === 'invalid_state') {
        formError.textContent = 'This activity is no longer a draft: it cannot be edited.';
      } else {
        formError.textContent = describe(e);
      }
    } finally {
      submit.disabled = false;
    }
  });
  return life;
}

// --- one activity, live --------------------------------------------------

// STATE_NOTES say, under an activity's buttons, what its state allows and
// why the other buttons are disabled: written out, not only in a tooltip.
const STATE_NOTES = {
  draft: 'A draft can be edited, approved or refused. Open comes after the approval; Close once open.',
  approved: 'Approved: it can be opened, or sent back to draft to correct it. Edit, Approve and Refuse are for drafts, Close for an open activity.',
  open: 'Open: only Close and Change stock are possible now. To sell again with other settings, Duplicate it into a new draft.',
  closed: 'Closed: the sale is over and cannot change. Duplicate it to start a new draft from it.',
  refused: 'Refused: it can never be opened or edited. Duplicate it into a new draft to correct it and submit it again.',
};

function sum(o) { return o ? (o.soldOut || 0) + (o.limitReached || 0) + (o.busy || 0) : null; }

// turnedAwayWords says why users were turned away, in words.
function turnedAwayWords(t) {
  if (!t) return 'not counted';
  return `sold out ${fmtInt(t.soldOut || 0)} · over the limit ${fmtInt(t.limitReached || 0)} · busy ${fmtInt(t.busy || 0)}`;
}

// saleStatus says where a sale is, in plain words: the status of the live
// view (idle, waiting, selling, ended, settling, converged) with an icon,
// a title and a detail. st are the figures to judge by.
function saleStatus(a, st, now = Date.now()) {
  const begin = Date.parse(a.beginAt), end = Date.parse(a.endAt);
  const idle = (title, detail = '') => ({status: 'idle', icon: '○', title, detail});
  switch (a.state) {
    case 'draft': return idle('Draft: not open yet.', 'It needs an approval, then Open, before anyone can join.');
    case 'refused': return idle('Refused: it will never open.', 'Duplicate it to correct it and submit it again.');
    case 'approved':
      if (end <= now) {
        return idle(`Approved, but its window ended ${fmtTime(a.endAt)}: nobody could join.`,
          'Send it back to draft to correct the window.');
      }
      if (a.autoOpen && begin > now) {
        return {status: 'waiting', icon: '◷', title: `Opens by itself. Starts in ${fmtDuration((begin - now) / 1000)}.`,
          detail: `At ${fmtTime(a.beginAt)} its ${fmtInt(a.stock)} slots go on sale without anyone pressing Open.`};
      }
      return idle('Approved, not open yet.', begin > now
        ? `Press Open before ${fmtTime(a.beginAt)}, when joining may start (in ${fmtDuration((begin - now) / 1000)}).`
        : 'Joining starts as soon as it is opened.');
    default:
  }
  const claimed = st.claimed ?? 0, issued = st.issued ?? 0;
  const left = Math.max(0, a.stock - claimed);
  if (a.state === 'open' && now < begin) {
    return {status: 'waiting', icon: '◷', title: `Open, not started yet. Starts in ${fmtDuration((begin - now) / 1000)}.`,
      detail: `Users are turned away until ${fmtTime(a.beginAt)}; then ${fmtInt(a.stock)} slots go on sale.`};
  }
  const soldOut = claimed >= a.stock;
  const saved = typeof st.recorded === 'number' && st.recorded === issued && st.inFlight === 0 && claimed === issued;
  const settled = saved && st.surplus === a.stock - claimed;
  if (a.state === 'open' && now >= end && !soldOut) {
    return {status: 'ended', icon: '■', title: `The window ended ${fmtTime(a.endAt)}: users are turned away.`,
      detail: `${fmtInt(issued)} winners, ${fmtInt(left)} slots unsold. Close it to write the sale's summary.`};
  }
  if (settled && (soldOut || a.state === 'closed')) {
    return {status: 'converged', icon: '✓',
      title: soldOut ? 'Sold out. Every winner is saved to the database ✓' : `Closed, ${fmtInt(left)} slots unsold. Every winner is saved to the database ✓`,
      detail: `${fmtInt(issued)} winners.`};
  }
  if (soldOut || a.state === 'closed') {
    return {status: 'settling', icon: '…', title: soldOut ? 'Sold out. Saving the last winners…' : 'Closed. Saving the last winners…',
      detail: `${fmtInt(st.recorded)} of ${fmtInt(issued)} winners saved to the database so far; the rest follow within seconds.`};
  }
  return {status: 'selling', icon: '●', title: `Selling: ${fmtInt(left)} of ${fmtInt(a.stock)} slots left.`,
    detail: `Open until ${fmtTime(a.endAt)}, ${fmtDuration((end - now) / 1000)} from now.`};
}

// outageStatus is the live view's status while dependencies are down
// (down: their names; answered: whether the server answered at all), or
// null when all answer.
function outageStatus(a, down, answered, ages) {
  if (!down.length) return null;
  const names = down.map(d => DEPENDENCIES[d] ? DEPENDENCIES[d].name : d);
  const open = a && a.state === 'open';
  if (down.includes('server')) {
    return {status: 'outage', icon: '!', title: 'The server does not answer.',
      detail: `Every figure below is greyed, last updated ${ages.any}; retrying every second.`};
  }
  const d = DEPENDENCIES[down[0]] || {name: names[0], crowd: 'the sale may be affected'};
  let title = `${listOr(names)} ${names.length > 1 ? 'are' : 'is'} down`;
  let detail;
  if (down.includes('redis')) {
    title += open ? ': nobody can join right now, every join is refused.' : ': the live figures cannot be read.';
  } else if (down.includes('mysql')) {
    title += open ? ': joins go on, but the numbers saved to the database are late.' : ': activities cannot be changed.';
  } else {
    title += open ? `: ${d.crowd}.` : '.';
  }
  if (!answered) {
    detail = `The server cannot answer for this activity: every figure below is greyed, last updated ${ages.any}.`;
  } else if (down.includes('redis')) {
    detail = `Winners, slots left and joins per second are greyed: last updated ${ages.redis}. What is saved to the database still comes.`;
  } else if (down.includes('mysql')) {
    detail = `Winners, slots left and joins per second keep coming from Redis; “Saved to the database” is greyed: last updated ${ages.mysql}.`;
  } else {
    detail = 'The figures below may be late.';
  }
  return {status: 'outage', icon: '!', title, detail};
}

function tile(id, label, note = '') {
  return h('div', {class: 'card tile', id: `${id}-tile`},
    h('div', {class: 'label', id: `${id}-label`}, label),
    h('div', {class: 'value', id}, '—'),
    h('div', {class: 'note', id: `${id}-note`}, note),
    h('div', {class: 'age', id: `${id}-age`}));
}

// --- the audit log of one activity --------------------------------------------

// fmtChange shows one field's value in an audit entry.
function fmtChange(field, v) {
  if (v === null || v === undefined) return '—';
  if (field === 'beginAt' || field === 'endAt' || field === 'redeemedAt') return fmtTime(v);
  if (typeof v === 'number') return fmtInt(v);
  if (field === 'name') return `“${v}”`;
  return String(v);
}

// whatChanged says in a few words what an audit entry changed, from its
// before and after.
function whatChanged(e) {
  if (e.action === 'create') return 'created';
  if (e.action === 'redeem') {
    const tok = e.target || '';
    const p = e.after || {};
    return `redeemed token ${tok.length > 14 ? tok.slice(0, 12) + '…' : tok}` +
      (p.userId ? ` of ${p.userId}, slot ${fmtInt(p.slot)}` : '');
  }
  const before = e.before || {}, after = e.after || {};
  const parts = [];
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (JSON.stringify(before[k]) === JSON.stringify(after[k])) continue;
    parts.push(k === 'description' ? 'description changed' : `${k} ${fmtChange(k, before[k])} → ${fmtChange(k, after[k])}`);
  }
  return parts.length ? parts.join('; ') : 'no change';
}

// auditSection lists the audit entries of an activity, newest first, a
// page at a time; refresh() puts the entries newer than those shown on
// top.
function auditSection(activityID, life) {
  const rows = h('tbody', {id: 'audit-rows'});
  const status = h('p', {class: 'empty', id: 'audit-status'}, 'Loading…');
  const older = h('button', {type: 'button', id: 'audit-older', hidden: true, onclick: () => more()}, 'Older →');
  const el = h('section', {id: 'audit', class: 'audit', 'aria-labelledby': 'audit-title'},
    h('h2', {id: 'audit-title'}, 'Audit'),
    h('div', {class: 'card list-card'},
      h('table', {class: 'list', id: 'audit-table'},
        h('thead', {}, h('tr', {}, h('th', {}, 'When'), h('th', {}, 'Who'), h('th', {}, 'Action'), h('th', {}, 'What changed'))),
        rows),
      status),
    h('div', {class: 'pager'}, h('span', {class: 'muted'}, 'Newest first'), older));
  let next = null, newest = 0, busy = false, again = false;

  const page = after => {
    const q = new URLSearchParams({activityId: activityID, limit: AUDIT_PAGE});
    if (after) q.set('after', after);
    return request('GET', `${AUDIT_API}?${q}`);
  };
  const row = e => h('tr', {'data-action': e.action, 'data-id': e.id, 'data-actor': e.actor},
    h('td', {'data-label': 'When'}, h('time', {datetime: e.at}, secondsFormat.format(new Date(e.at)))),
    h('td', {class: 'who', 'data-label': 'Who'}, h('span', {}, e.actor, ' ', h('span', {class: 'muted'}, `(${e.role})`))),
    h('td', {class: 'action', 'data-label': 'Action'}, e.action.replace(/_/g, ' ')),
    h('td', {class: 'what', 'data-label': 'What changed'}, whatChanged(e)));
  const shown = () => {
    const empty = rows.children.length === 0;
    status.textContent = empty ? 'No changes recorded yet.' : '';
    status.hidden = !empty;
    older.hidden = !next;
  };

  const refresh = async () => {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const p = await page(null);
      if (!life.alive()) return;
      const entries = p.entries || [];
      const fresh = entries.filter(e => e.id > newest);
      if (fresh.length === entries.length) {
        // None of those shown is on the first page any more: start over.
        rows.replaceChildren(...fresh.map(row));
        next = p.next || null;
      } else {
        rows.prepend(...fresh.map(row));
      }
      if (fresh.length) newest = fresh[0].id;
      shown();
    } catch (e) {
      if (!life.alive()) return;
      status.hidden = false;
      status.textContent = describe(e);
    } finally {
      busy = false;
      if (again && life.alive()) { again = false; refresh(); }
    }
  };

  const more = async () => {
    if (!next) return;
    older.disabled = true;
    try {
      const p = await page(next);
      if (!life.alive()) return;
      rows.append(...(p.entries || []).map(row));
      next = p.next || null;
      shown();
    } catch (e) {
      if (life.alive()) notice(describe(e), 'error');
    } finally {
      older.disabled = false;
    }
  };

  return {el, refresh};
}

// fourEyes is why an approver may not approve or refuse the draft a (they
// created or last edited it), or '' when they may: the server's rule.
function fourEyes(a) {
  const m = me();
  if (!m || m.role !== 'approver' || a.state !== 'draft') return '';
  if (a.createdBy === m.name) return `Four eyes: you (${m.name}) created this draft, so another approver must approve or refuse it.`;
  if (a.updatedBy === m.name) return `Four eyes: you (${m.name}) last edited this draft, so another approver must approve or refuse it.`;
  return '';
}

// AUDIT_REFRESH_MS is how often the audit section looks for entries that
// change nothing the live view shows (a redeem).
const AUDIT_REFRESH_MS = 10e3;

function liveView(main, id) {
  const life = lifetime();
  let a = null;
  const samples = []; // {t, issued}
  const rates = [];   // joins per second between successive samples
  let peak = 0;
  // What the server last said: the figures of each source and when they
  // came, what it says is down, and when it last answered.
  let redisFig = null, redisAt = 0, mysqlFig = null, mysqlAt = 0, answeredAt = 0;
  let down = [], answered = true;
  let timeline = null, timelineAt = 0, timelineWorks = true;

  // The gauge: a ring whose arc is claimed / stock.
  const R = 50, C = 2 * Math.PI * R;
  const arc = s('circle', {class: 'value', cx: 60, cy: 60, r: R, 'stroke-dasharray': C.toFixed(2),
    'stroke-dashoffset': C.toFixed(2), transform: 'rotate(-90 60 60)'});
  const pct = s('text', {class: 'pct', x: 60, y: 62, 'text-anchor': 'middle', id: 'gauge-pct'}, '0 %');
  const gauge = s('svg', {class: 'gauge', viewBox: '0 0 120 120', role: 'img', id: 'gauge', 'aria-label': 'share of the slots claimed'},
    s('circle', {class: 'track', cx: 60, cy: 60, r: R}), arc, pct,
    s('text', {class: 'sub', x: 60, y: 78, 'text-anchor': 'middle'}, 'claimed'));

  const sparkLine = s('polyline', {class: 'line', points: ''});
  const sparkArea = s('polygon', {class: 'area', points: ''});
  const spark = s('svg', {class: 'spark', viewBox: `0 0 ${SPARK_SAMPLES - 1} 100`, preserveAspectRatio: 'none', 'aria-hidden': 'true'},
    sparkArea, sparkLine);

  const name = h('h1', {id: 'a-name'}, '…');
  const state = h('span', {id: 'a-state'});
  const description = h('p', {class: 'description', id: 'a-description'});
  const facts = h('dl', {class: 'facts'});
  const summary = h('section', {class: 'card summary', id: 'summary', hidden: true, 'aria-labelledby': 'summary-title'});
  const editLink = h('button', {type: 'button', id: 'action-edit', 'aria-describedby': 'actions-note role-note',
    onclick: () => { location.hash = `#/activities/${id}/edit`; }}, 'Edit');
  const duplicateButton = h('button', {type: 'button', id: 'action-duplicate', 'aria-describedby': 'actions-note role-note',
    onclick: () => duplicate()}, 'Duplicate');
  const buttons = ACTIONS.map(act => h('button', {type: 'button', id: `action-${act.name}`, class: act.style || null,
    'data-action': act.name, disabled: true, 'aria-describedby': 'actions-note role-note four-eyes-note',
    onclick: () => run(act)}, act.label));
  const stockButton = h('button', {type: 'button', id: 'action-stock', disabled: true, 'aria-describedby': 'actions-note role-note',
    onclick: () => { stockForm.hidden = !stockForm.hidden; if (!stockForm.hidden) { stockInput.value = a.stock; stockInput.focus(); } }},
  'Change stock');
  const exportButton = h('button', {type: 'button', id: 'export-csv', disabled: true, 'aria-describedby': 'actions-note role-note',
    onclick: () => exportCSV()}, 'Export winners (CSV)');
  const exportStatus = h('span', {id: 'export-status', class: 'muted', role: 'status'});

  // Open by schedule: a draft's or an approved activity's switch.
  const autoOpen = h('input', {type: 'checkbox', id: 'auto-open', disabled: true, onchange: () => setAutoOpen(autoOpen.checked)});
  const autoOpenRow = h('p', {class: 'switch-row'}, h('label', {for: 'auto-open'}, autoOpen,
    ' Open by itself when it begins'), h('span', {class: 'muted', id: 'auto-open-note'}));

  // The stock change: a number, then a confirmation.
  const stockInput = h('input', {id: 'stock-input', type: 'number', min: 1, max: MAX_STOCK, step: 1, inputmode: 'numeric', autocomplete: 'off',
    required: true, 'aria-describedby': 'stock-hint stock-error'});
  const stockError = h('p', {id: 'stock-error', class: 'field-error', role: 'alert'});
  const stockForm = h('form', {id: 'stock-form', class: 'card stock-form', novalidate: true, hidden: true},
    h('label', {for: 'stock-input'}, 'New stock'), stockInput,
    h('p', {class: 'hint', id: 'stock-hint'}, 'Raise it to sell more slots at once; lower it down to the slots already claimed.'),
    stockError,
    h('div', {class: 'form-actions'}, h('button', {type: 'submit', class: 'primary', id: 'stock-apply'}, 'Apply'),
      h('button', {type: 'button', onclick: () => { stockForm.hidden = true; }}, 'Cancel')));
  stockInput.addEventListener('input', () => { stockError.textContent = ''; });
  stockForm.addEventListener('submit', async ev => {
    ev.preventDefault();
    stockError.textContent = '';
    const n = Number(stockInput.value);
    if (stockInput.value.trim() === '' || !Number.isInteger(n) || n < 1) {
      stockError.textContent = 'Enter a whole number of slots, at least 1.';
      stockInput.focus();
      return;
    }
    if (n === a.stock) { stockForm.hidden = true; return; }
    const claimed = a.stats ? a.stats.claimed : 0;
    const text = n > a.stock
      ? `Raise the stock of “${a.name}” from ${fmtInt(a.stock)} to ${fmtInt(n)}? ${fmtInt(n - a.stock)} more slots go on sale at once.`
      : `Lower the stock of “${a.name}” from ${fmtInt(a.stock)} to ${fmtInt(n)}? ${fmtInt(a.stock - n)} unsold slots are taken back (${fmtInt(claimed)} are claimed now).`;
    if (!await confirmAction('Change stock', text, 'Change stock', n > a.stock ? 'primary' : 'danger')) return;
    try {
      const next = await request('POST', `${API}/${id}/stock`, {stock: n});
      if (!life.alive()) return;
      a = {...next, stats: a.stats};
      stockForm.hidden = true;
      render();
      notice(`The stock is ${fmtInt(next.stock)} now.`, 'ok');
    } catch (e) {
      if (!life.alive()) return;
      stockError.textContent = e.code === 'invalid_request' ? e.message : describe(e);
      stockInput.focus();
    }
    poll();
  });
  const status = h('div', {class: 'status', id: 'live-status', 'data-status': 'idle', role: 'status'},
    h('span', {class: 'icon', id: 'live-status-icon', 'aria-hidden': 'true'}),
    h('div', {}, h('div', {id: 'live-status-title'}), h('div', {class: 'detail', id: 'live-status-detail'})));
  const updated = h('p', {class: 'updated', id: 'live-updated'});
  const actionsNote = h('p', {class: 'role-note state-note', id: 'actions-note'});
  const roleNoteEl = h('p', {class: 'role-note', id: 'role-note'});
  const fourEyesNote = h('p', {class: 'role-note', id: 'four-eyes-note'});
  const audit = may('audit') ? auditSection(id, life) : null;
  const engineering = h('p', {class: 'engineering', id: 'live-engineering'});
  let auditSeen = null, auditAt = 0;

  main.append(
    h('nav', {class: 'crumbs', 'aria-label': 'breadcrumbs'}, h('a', {href: '#/'}, 'Activities'), ' / ', h('span', {id: 'crumb-id'}, `#${id}`)),
    h('div', {class: 'detail-head'}, name, state),
    description, facts,
    autoOpenRow,
    h('div', {class: 'actions'},
      editLink, buttons.find(b => b.dataset.action === 'draft'), duplicateButton, stockButton, exportButton,
      h('span', {class: 'spacer'}), buttons.filter(b => b.dataset.action !== 'draft')),
    actionsNote, roleNoteEl, fourEyesNote,
    exportStatus, stockForm,
    summary,
    h('section', {class: 'live', id: 'live', 'aria-label': 'live view'},
      h('div', {class: 'card gauge-card', id: 'gauge-card'}, gauge,
        h('p', {class: 'gauge-caption'}, h('strong', {id: 'gauge-claimed', class: 'num'}, '—'), ' of ',
          h('span', {id: 'gauge-stock', class: 'num'}, '—'), ' slots claimed')),
      h('div', {class: 'side'},
        status,
        h('div', {class: 'tiles'},
          tile('live-winners', 'Winners', 'users who got a token'),
          tile('live-left', 'Slots left', ''),
          tile('live-turned', 'Turned away', ''),
          tile('live-saved', 'Saved to the database', ''),
          tile('live-jps', 'Joins per second', 'average of the last 5 s')),
        h('div', {class: 'card spark-card'},
          h('div', {class: 'spark-head'}, h('span', {id: 'spark-title'}, `Joins per second, last ${SPARK_SAMPLES} s`),
            h('span', {}, 'peak ', h('strong', {id: 'live-jps-peak', class: 'num'}, '0'), h('span', {id: 'live-jps-peak-at'}))),
          spark),
        h('details', {class: 'card details', id: 'live-details'},
          h('summary', {}, 'Details for engineers'),
          h('div', {class: 'tiles'},
            tile('live-claimed', 'Claimed', 'slots taken in Redis'),
            tile('live-issued', 'Issued', 'tokens handed out'),
            tile('live-inflight', 'In flight', 'slots taken whose token is not yet handed out or given back'),
            tile('live-recorded', 'Recorded', 'winners saved in MySQL'),
            tile('live-surplus', 'Surplus', 'the stock left as MySQL last saw it'),
            tile('live-reconciled', 'Reconciled at', '')),
          engineering),
        updated)),
    audit ? audit.el : null);

  // allow enables a control when the state and the role let it be used,
  // and says why not otherwise: the title, data-disabled-by, and for the
  // role the note under the buttons (verbs collects it).
  const allow = (el, verbs, {state: stateOK, stateWhy, role: roleOK, verb, eyes = ''}) => {
    const by = !stateOK ? 'state' : !roleOK ? 'role' : eyes ? 'four-eyes' : '';
    el.disabled = by !== '';
    el.title = by === 'state' ? stateWhy : by === 'role' ? roleNote([verb]) : eyes;
    if (by) el.dataset.disabledBy = by;
    else delete el.dataset.disabledBy;
    if (by === 'role') verbs.push(verb);
  };

  // figures are what the live view shows: the latest of each source, and
  // whether it is stale (its source did not answer in the last poll).
  const figures = () => {
    const st = (a && a.stats) || {};
    const redisDown = !answered || down.includes('redis');
    const mysqlDown = !answered || down.includes('mysql');
    return {
      claimed: redisFig ? redisFig.claimed : 0, inFlight: redisFig ? redisFig.inFlight : 0,
      issued: redisFig ? redisFig.issued : 0, turnedAway: redisFig ? redisFig.turnedAway : null,
      recorded: mysqlFig ? mysqlFig.recorded : 0, surplus: mysqlFig ? mysqlFig.surplus : (a ? a.stock : 0),
      reconciledAt: mysqlFig ? mysqlFig.reconciledAt : st.reconciledAt || null,
      redisStale: redisDown && (a && (a.state === 'open' || a.state === 'closed')),
      mysqlStale: mysqlDown && (a && (a.state === 'open' || a.state === 'closed')),
    };
  };

  const ageOf = at => at ? `updated ${ago(new Date(at).toISOString())}` : 'not known yet';

  // stale greys a tile whose figure cannot be vouched for and says how old
  // it is.
  const stale = (tileID, isStale, at) => {
    const t = $(`${tileID}-tile`);
    t.classList.toggle('stale', !!isStale);
    t.dataset.stale = String(!!isStale);
    $(`${tileID}-age`).textContent = isStale ? ageOf(at) : '';
  };

  // jps is the joins per second of the last 5 whole seconds, from the
  // timeline, or from successive samples of issued without one.
  const series = () => {
    if (!timeline) return null;
    const now = Math.floor(Date.now() / 1000);
    const by = new Map((timeline.seconds || []).map(x => [Math.floor(Date.parse(x.at) / 1000), x]));
    if (a.state === 'closed' && by.size) {
      // The whole sale, in SPARK_SAMPLES steps.
      const keys = [...by.keys()];
      const first = Math.min(...keys), last = Math.max(...keys);
      const step = Math.max(1, Math.ceil((last - first + 1) / SPARK_SAMPLES));
      const out = [];
      for (let t = first; t <= last; t += step) {
        let m = 0;
        for (let u = t; u < t + step; u++) m = Math.max(m, (by.get(u) || {joins: 0}).joins);
        out.push(m);
      }
      return {points: out, recent: null, title: 'Joins per second over the sale'};
    }
    const out = [];
    for (let t = now - SPARK_SAMPLES; t < now; t++) out.push((by.get(t) || {joins: 0}).joins);
    const recent = out.slice(-6, -1).reduce((x, y) => x + y, 0) / 5;
    return {points: out, recent, title: `Joins per second, last ${SPARK_SAMPLES} s`};
  };

  const render = () => {
    document.title = `${a.name} · seckill console`;
    name.textContent = a.name;
    state.replaceChildren(badge(a.state));
    description.textContent = a.description || '';
    description.hidden = !a.description;
    facts.replaceChildren(...[
      ['Window', fmtWindow(a.beginAt, a.endAt)],
      ['Stock', fmtInt(a.stock)],
      ['Per user', fmtInt(a.perUserLimit)],
      ['Shards', fmtInt(a.shards ?? 1)],
      ['Last change', fmtTime(a.updatedAt)],
    ].map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v))));
    const verbs = [];
    allow(editLink, verbs, {state: a.state === 'draft', stateWhy: 'Only a draft can be edited', role: may('edit'), verb: 'edit'});
    const eyes = fourEyes(a);
    for (const b of buttons) {
      const act = ACTIONS.find(x => x.name === b.dataset.action);
      allow(b, verbs, {state: a.state === act.from, stateWhy: `Allowed only when the activity is ${act.from}`,
        role: may(act.name), verb: act.name === 'draft' ? 'send back to draft' : act.name, eyes: act.from === 'draft' ? eyes : ''});
    }
    allow(duplicateButton, verbs, {state: true, role: may('duplicate'), verb: 'duplicate'});
    allow(stockButton, verbs, {state: ['draft', 'approved', 'open'].includes(a.state),
      stateWhy: 'A refused or closed activity keeps its stock', role: may('stock'), verb: 'change the stock'});
    if (stockButton.disabled) stockForm.hidden = true;
    allow(exportButton, verbs, {state: a.state === 'open' || a.state === 'closed',
      stateWhy: 'Only an open or closed activity has winners', role: may('export'), verb: 'export the winners'});
    autoOpen.checked = !!a.autoOpen;
    // Once open, the switch has nothing left to do: it is not shown.
    autoOpenRow.hidden = !(a.state === 'draft' || a.state === 'approved');
    // On a draft the switch is an edit, an editor's; once approved, an
    // operator's.
    allow(autoOpen, verbs, {state: a.state === 'draft' || a.state === 'approved', stateWhy: 'Only a draft or an approved activity',
      role: may(a.state === 'draft' ? 'edit' : 'autoOpen'), verb: 'switch “Open by itself”'});
    actionsNote.textContent = STATE_NOTES[a.state] || '';
    roleNoteEl.textContent = roleNote(verbs);
    fourEyesNote.textContent = a.state === 'draft' && may('approve') ? eyes : '';
    if (audit && (a.updatedAt !== auditSeen || Date.now() - auditAt > AUDIT_REFRESH_MS)) {
      auditSeen = a.updatedAt;
      auditAt = Date.now();
      audit.refresh();
    }
    $('auto-open-note').textContent = a.state === 'draft' || a.state === 'approved'
      ? (a.autoOpen ? ` — once approved, it opens at ${fmtTime(a.beginAt)} without anyone pressing Open.` : ' — off: someone presses Open.')
      : '';
    renderSummary();

    const f = figures();
    const frac = a.stock > 0 ? Math.min(1, f.claimed / a.stock) : 0;
    arc.setAttribute('stroke-dashoffset', (C * (1 - frac)).toFixed(2));
    gauge.classList.toggle('full', frac >= 1);
    if (!gauge.classList.contains('animated')) requestAnimationFrame(() => gauge.classList.add('animated'));
    pct.textContent = `${Math.floor(frac * 100)} %`;
    $('gauge-card').classList.toggle('stale', !!f.redisStale);
    $('gauge-claimed').textContent = fmtInt(f.claimed);
    $('gauge-stock').textContent = fmtInt(a.stock);

    const left = Math.max(0, a.stock - f.claimed);
    $('live-winners').textContent = fmtInt(f.issued);
    $('live-left').textContent = fmtInt(left);
    $('live-left-note').textContent = `of ${fmtInt(a.stock)}`;
    const turned = sum(f.turnedAway);
    $('live-turned').textContent = turned === null ? '—' : fmtInt(turned);
    $('live-turned-note').textContent = turnedAwayWords(f.turnedAway);
    const savedAll = f.recorded >= f.issued && f.inFlight === 0;
    $('live-saved').textContent = a.state === 'open' || a.state === 'closed'
      ? (savedAll ? `${fmtInt(f.recorded)} ✓` : fmtInt(f.recorded)) : '—';
    $('live-saved-note').textContent = a.state !== 'open' && a.state !== 'closed' ? 'once it sells'
      : savedAll ? 'every winner is saved'
        : f.mysqlStale ? `of ${fmtInt(f.issued)} winners; the rest are saved once MySQL is back`
          : `of ${fmtInt(f.issued)} winners; the rest follow within seconds`;
    for (const t of ['live-winners', 'live-left', 'live-turned', 'live-jps', 'live-claimed', 'live-issued', 'live-inflight']) {
      stale(t, f.redisStale, redisAt);
    }
    for (const t of ['live-saved', 'live-recorded', 'live-surplus', 'live-reconciled']) stale(t, f.mysqlStale, mysqlAt);

    $('live-claimed').textContent = fmtInt(f.claimed);
    $('live-inflight').textContent = fmtInt(f.inFlight);
    $('live-issued').textContent = fmtInt(f.issued);
    $('live-recorded').textContent = fmtInt(f.recorded);
    $('live-surplus').textContent = fmtInt(f.surplus);
    const want = a.stock - f.claimed;
    $('live-surplus-note').textContent = f.surplus === want
      ? `= stock − claimed (${fmtInt(want)})`
      : `catching up: becomes stock − claimed (${fmtInt(want)}) at the next reconcile, every few seconds`;
    $('live-reconciled').textContent = f.reconciledAt ? clockFormat.format(new Date(f.reconciledAt)) : 'not yet';
    $('live-reconciled').classList.add('small');
    $('live-reconciled-note').textContent = f.reconciledAt ? `${ago(f.reconciledAt)}: the stock left copied to MySQL` : 'not copied to MySQL yet';
    engineering.textContent = a.state === 'open' || a.state === 'closed'
      ? `claimed ${fmtInt(f.claimed)}, issued ${fmtInt(f.issued)}, recorded ${fmtInt(f.recorded)}, in flight ${fmtInt(f.inFlight)}, ` +
        `surplus ${fmtInt(f.surplus)} (stock − claimed = ${fmtInt(want)}). Settled when claimed = issued = recorded, ` +
        'nothing is in flight and surplus = stock − claimed.'
      : 'The figures start when the activity opens.';

    const sr = series();
    const points = sr ? sr.points : rates.slice(-SPARK_SAMPLES);
    const jps = sr ? sr.recent : rates.length ? rates[rates.length - 1] : null;
    $('spark-title').textContent = sr ? sr.title : `Joins per second, last ${SPARK_SAMPLES} samples`;
    $('live-jps').textContent = jps === null ? '—' : fmtInt(Math.round(jps));
    const tlPeak = timeline && timeline.peak ? timeline.peak : null;
    const peakNow = tlPeak ? tlPeak.joins : a.summary ? a.summary.peakJoinsPerSecond : peak;
    const peakAt = tlPeak ? tlPeak.at : a.summary ? a.summary.peakAt : null;
    $('live-jps-peak').textContent = fmtInt(Math.round(peakNow || 0));
    $('live-jps-peak-at').textContent = peakAt ? ` at ${clockFormat.format(new Date(peakAt))}` : '';
    const top = Math.max(...points, peakNow || 0, 1);
    const n = sr ? points.length : SPARK_SAMPLES;
    const pts = points.map((r, i, all) => `${((SPARK_SAMPLES - 1) * (n - all.length + i) / Math.max(1, n - 1)).toFixed(2)},${(100 - (r / top) * 96).toFixed(1)}`);
    sparkLine.setAttribute('points', pts.join(' '));
    sparkArea.setAttribute('points', pts.length ? `${pts[0].split(',')[0]},100 ${pts.join(' ')} ${pts[pts.length - 1].split(',')[0]},100` : '');

    const ages = {any: ago(new Date(answeredAt || Date.now()).toISOString()),
      redis: ago(new Date(redisAt || Date.now()).toISOString()), mysql: ago(new Date(mysqlAt || Date.now()).toISOString())};
    const c = outageStatus(a, down, answered, ages) || saleStatus(a, {...f, recorded: f.recorded});
    status.dataset.status = c.status;
    status.dataset.down = down.join(' ');
    $('live-status-icon').textContent = c.icon;
    $('live-status-title').textContent = c.title;
    $('live-status-detail').textContent = c.detail;
    updated.textContent = answered && !down.length
      ? `Updated ${clockFormat.format(new Date(answeredAt))}, every ${POLL_MS / 1000} s`
      : answered ? `Updated ${clockFormat.format(new Date(answeredAt))}, every ${POLL_MS / 1000} s, with ${listOr(down.map(d => DEPENDENCIES[d] ? DEPENDENCIES[d].name : d))} down`
        : `No answer since ${answeredAt ? clockFormat.format(new Date(answeredAt)) : 'the page opened'}; retrying every ${POLL_MS / 1000} s`;
  };

  // renderSummary shows the summary of a closed sale, as the server keeps it.
  const renderSummary = () => {
    const sm = a.summary;
    summary.hidden = !sm;
    if (!sm) return;
    const dur = typeof sm.durationSeconds === 'number' ? sm.durationSeconds
      : (Date.parse(sm.endedAt) - Date.parse(sm.startedAt)) / 1000;
    summary.replaceChildren(
      h('h2', {id: 'summary-title'}, 'Sale summary'),
      h('dl', {class: 'facts summary-facts'}, ...[
        ['Winners', fmtInt(sm.winners), 'summary-winners'],
        ['Turned away', `${fmtInt(sum(sm.turnedAway))} (${turnedAwayWords(sm.turnedAway)})`, 'summary-turned'],
        ['Peak joins per second', `${fmtInt(sm.peakJoinsPerSecond)}${sm.peakAt ? ` at ${clockFormat.format(new Date(sm.peakAt))}` : ''}`, 'summary-peak'],
        ['Duration', `${fmtDuration(dur)} (${fmtWindow(sm.startedAt, sm.endedAt)})`, 'summary-duration'],
      ].map(([k, v, i]) => h('div', {}, h('dt', {}, k), h('dd', {id: i}, v)))));
  };

  // sample records a poll's issued counter and derives joins per second:
  // the chart without a timeline from the server.
  const sample = () => {
    const now = performance.now();
    const issued = redisFig ? redisFig.issued : 0;
    const last = samples[samples.length - 1];
    samples.push({t: now, issued});
    if (samples.length > 2) samples.shift();
    if (last && now > last.t) {
      const r = Math.max(0, (issued - last.issued) / ((now - last.t) / 1000));
      rates.push(r);
      if (rates.length > SPARK_SAMPLES) rates.shift();
      peak = Math.max(peak, r);
    }
  };

  // take keeps what an answer holds: the figures of each source that
  // answered, and what is down.
  const take = got => {
    const now = Date.now();
    a = got;
    answered = true;
    answeredAt = now;
    down = Array.isArray(got.unavailable) ? got.unavailable.slice() : [];
    const st = got.stats;
    if (st && typeof st.issued === 'number' && typeof st.claimed === 'number') {
      redisFig = {claimed: st.claimed, inFlight: st.inFlight ?? 0, issued: st.issued, turnedAway: st.turnedAway || null};
      redisAt = now;
    } else if (!st) {
      redisFig = null;
    }
    if (st && typeof st.recorded === 'number') {
      mysqlFig = {recorded: st.recorded, surplus: st.surplus, reconciledAt: st.reconciledAt || null};
      mysqlAt = now;
    } else if (!st) {
      mysqlFig = null;
    }
  };

  // loadTimeline asks for the joins of the last seconds (the whole sale
  // once closed): every poll while open, once when closed.
  const loadTimeline = async () => {
    if (!timelineWorks || !a || (a.state !== 'open' && a.state !== 'closed') || down.includes('redis')) return;
    if (a.state === 'closed' && timeline && Date.now() - timelineAt < 30e3) return;
    try {
      const seconds = a.state === 'closed' ? 3600 : SPARK_SAMPLES + 5;
      const tl = await request('GET', `${API}/${id}/timeline?seconds=${seconds}`);
      if (!life.alive()) return;
      timeline = tl;
      timelineAt = Date.now();
    } catch (e) {
      // An older server has no timeline: the chart comes from samples.
      if (e.status === 404 || e.status === 405) timelineWorks = false;
    }
  };

  const poll = async () => {
    if (!document.hidden) {
      try {
        const got = await request('GET', `${API}/${id}`);
        if (!life.alive()) return;
        take(got);
        await loadTimeline();
        if (!life.alive()) return;
        sample();
        render();
      } catch (e) {
        if (!life.alive()) return;
        if (e.code === 'not_found') {
          main.replaceChildren(h('p', {class: 'card'}, `No activity #${id}. `, h('a', {href: '#/'}, 'Back to the activities')));
          return;
        }
        answered = false;
        const d = dependencyOf(e);
        down = e.code === 'unavailable' && d ? [d] : ['server'];
        if (a) render();
        else notice(`${describe(e)} Retrying…`, 'error');
      }
    }
    life.later(poll, POLL_MS);
  };

  const setAutoOpen = async on => {
    try {
      const next = await request('PATCH', `${API}/${id}`, {autoOpen: on});
      if (!life.alive()) return;
      a = {...next, stats: a.stats};
      render();
      notice(on ? `It opens by itself at ${fmtTime(a.beginAt)}.` : 'It opens when someone presses Open.', 'ok');
    } catch (e) {
      if (!life.alive()) return;
      notice(describe(e), 'error');
      autoOpen.checked = !on;
    }
  };

  // exportCSV downloads every winner as CSV: fetched with the token, handed
  // to the browser as a file.
  const exportCSV = async () => {
    exportButton.disabled = true;
    exportStatus.textContent = 'Exporting…';
    try {
      const resp = await send('GET', `${API}/${id}/participations?format=csv`, undefined, token(), 'text/csv');
      if (!resp.ok) {
        let data = null;
        try { data = await resp.json(); } catch { /* not JSON */ }
        throw apiError(resp, data, token());
      }
      // Read in chunks, counting the lines as they come: the file is held
      // once, as the Blob's parts, however many winners it lists.
      const chunks = [];
      let lines = 0;
      const reader = resp.body.getReader();
      for (;;) {
        const {done, value} = await reader.read();
        if (done) break;
        chunks.push(value);
        for (const b of value) if (b === 10) lines++;
      }
      if (!life.alive()) return;
      const rows = lines - 1; // the header
      const url = URL.createObjectURL(new Blob(chunks, {type: 'text/csv'}));
      const link = h('a', {href: url, download: `activity-${id}-winners.csv`, hidden: true});
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60e3);
      exportStatus.textContent = `Downloaded activity-${id}-winners.csv: ${fmtInt(rows)} winners.`;
    } catch (e) {
      if (life.alive()) exportStatus.textContent = `Export failed: ${describe(e)}`;
    } finally {
      if (life.alive()) render();
    }
  };

  const run = async act => {
    if (!a || a.state !== act.from) return;
    if (!await confirmAction(`${act.label}`, act.ask(a), act.label, act.style)) return;
    for (const b of buttons) b.disabled = true;
    try {
      const next = await request('POST', `${API}/${id}/${act.name}`);
      if (!life.alive()) return;
      a = {...next, stats: a.stats};
      render();
      if (act.name === 'close' && next.summary) {
        const sm = next.summary;
        notice(`Closed. ${fmtInt(sm.winners)} winners, ${fmtInt(sum(sm.turnedAway))} turned away; the sale summary is below.`, 'ok');
      } else {
        notice(act.name === 'draft' ? 'Back to draft: it can be edited, then approved again.' : '', 'ok');
      }
    } catch (e) {
      if (!life.alive()) return;
      notice(describe(e), 'error');
      render();
    }
    poll();
  };

  // duplicate makes a new draft from this activity and opens its form.
  const duplicate = async () => {
    duplicateButton.disabled = true;
    try {
      const copy = await request('POST', `${API}/${id}/duplicate`, {});
      if (!life.alive()) return;
      nextNotice = {text: `A new draft, copied from “${a.name}”: correct it and save.`, kind: 'ok'};
      location.hash = `#/activities/${copy.id}/edit`;
    } catch (e) {
      if (!life.alive()) return;
      notice(describe(e), 'error');
      render();
    }
  };

  poll();
  return life;
}

// --- a token, and its redeem -------------------------------------------------

function tokenView(main, initial) {
  const life = lifetime();
  const input = h('input', {id: 'token-input', type: 'text', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'off'});
  const error = h('p', {id: 'token-error', class: 'field-error', role: 'alert'});
  const result = h('div', {id: 'token-result', class: 'card', hidden: true});
  const form = h('form', {id: 'token-form', class: 'card', novalidate: true},
    h('label', {for: 'token-input'}, 'Token'), input,
    h('p', {class: 'hint'}, 'A token a join answered: its activity, slot, user and whether the draw redeemed it.'),
    error,
    h('div', {class: 'form-actions'}, h('button', {type: 'submit', class: 'primary', id: 'token-lookup'}, 'Look up')));
  main.append(h('div', {class: 'toolbar'}, h('h1', {}, 'Tokens')), form, result);

  const show = p => {
    const redeemed = !!p.redeemedAt;
    const allowed = may('redeem');
    const redeem = h('button', {type: 'button', id: 'token-redeem', class: 'primary', disabled: redeemed || !allowed,
      'data-disabled-by': redeemed ? 'state' : allowed ? null : 'role', 'aria-describedby': 'token-role-note',
      onclick: () => doRedeem(p)}, 'Redeem');
    result.replaceChildren(
      h('dl', {class: 'facts'}, ...[
        ['Activity', may('read') ? h('a', {href: `#/activities/${p.activityId}`}, `#${p.activityId}`) : `#${p.activityId}`],
        ['Slot', fmtInt(p.slot)],
        ['User', p.userId],
        ['Issued', fmtTime(p.issuedAt)],
      ].map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v)))),
      h('p', {id: 'token-state', 'data-redeemed': String(redeemed)},
        redeemed ? `Redeemed on ${fmtTime(p.redeemedAt)}.` : 'Valid, not redeemed yet.'),
      h('div', {class: 'form-actions'}, redeem),
      h('p', {class: 'role-note', id: 'token-role-note'}, redeemed || allowed ? '' : roleNote(['redeem tokens'])));
    result.hidden = false;
  };

  const lookUp = async tok => {
    error.textContent = '';
    result.hidden = true;
    try {
      const p = await request('GET', `/api/v1/tokens/${encodeURIComponent(tok)}`);
      if (life.alive()) show(p);
    } catch (e) {
      if (!life.alive()) return;
      error.textContent = e.code === 'not_found'
        ? 'Not a valid token: mistyped, altered, unknown, or its join was given back.'
        : describe(e);
      input.focus();
    }
  };

  const doRedeem = async p => {
    if (!await confirmAction('Redeem token', `Redeem the token of ${p.userId}, slot ${fmtInt(p.slot)} of activity #${p.activityId}? A token is redeemed once: this cannot be undone.`, 'Redeem', 'danger')) return;
    const button = $('token-redeem');
    if (button) button.disabled = true;
    try {
      const redeemed = await request('POST', `${TOKENS_API}/${encodeURIComponent(p.token)}/redeem`);
      if (!life.alive()) return;
      show(redeemed);
      notice('Redeemed.', 'ok');
    } catch (e) {
      if (!life.alive()) return;
      if (e.code === 'already_redeemed') {
        show({...p, redeemedAt: e.detail.redeemedAt});
      } else if (button) {
        button.disabled = false;
      }
      notice(e.code === 'not_found' ? 'Not a valid token any more: its join was given back.' : describe(e), 'error');
    }
  };

  form.addEventListener('submit', ev => {
    ev.preventDefault();
    const tok = input.value.trim();
    if (!tok) {
      error.textContent = 'Enter a token.';
      input.focus();
      return;
    }
    lookUp(tok);
  });
  input.value = initial;
  if (initial) lookUp(initial);
  input.focus();
  return life;
}

// --- start ---------------------------------------------------------------

$('tz').textContent = `${timeZone} (${zoneName})`;
// The skip link moves the focus to the page's content without touching the
// address, which is the console's route.
$('skip-link').addEventListener('click', ev => {
  ev.preventDefault();
  const main = $('main');
  main.focus();
});
$('sign-out').addEventListener('click', () => signOut('Signed out.'));
window.addEventListener('hashchange', route);
route();
