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
    ask: a => `Refuse “${a.name}”? A refused activity can never be opened or edited.`},
  {name: 'open', label: 'Open', from: 'approved', style: 'primary',
    ask: a => `Open “${a.name}”? Its ${fmtInt(a.stock)} slots are loaded into Redis and users can join from ${fmtTime(a.beginAt)} until ${fmtTime(a.endAt)}.`},
  {name: 'close', label: 'Close', from: 'open', style: 'danger',
    ask: a => `Close “${a.name}”? Joins stop at once. This cannot be undone.`},
];

// FIELDS are the fields of create and edit, by their API names.
const FIELDS = [
  {name: 'name', label: 'Name', type: 'text', wide: true, required: true, hint: '1–128 characters'},
  {name: 'description', label: 'Description', type: 'textarea', wide: true, hint: 'Optional, up to 2,000 characters'},
  {name: 'stock', label: 'Stock', type: 'number', required: true, hint: 'Slots to hand out, 1–10,000,000'},
  {name: 'perUserLimit', label: 'Per-user limit', type: 'number', required: true, hint: 'Tokens one user may hold, at least 1'},
  {name: 'beginAt', label: 'Begins', type: 'datetime-local', required: true},
  {name: 'endAt', label: 'Ends', type: 'datetime-local', required: true, hint: 'After the beginning'},
];

const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {dateStyle: 'medium', timeStyle: 'short'});
const clockFormat = new Intl.DateTimeFormat(undefined, {timeStyle: 'medium'});
const secondsFormat = new Intl.DateTimeFormat(undefined, {dateStyle: 'medium', timeStyle: 'medium'});
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

// describe turns an APIError into a sentence for a notice.
function describe(e) {
  switch (e.code) {
    case 'unavailable': return `A dependency is down (${e.message}). Nothing was changed; try again.`;
    case 'invalid_state': return 'Not allowed in the activity’s current state: someone may have changed it meanwhile.';
    case 'not_found': return 'No such activity.';
    case 'stock_conflict': return `${fmtInt(e.detail.claimed)} slots are claimed already: the stock can go down to ${fmtInt(e.detail.claimed)} at the lowest.`;
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

function signOut(message = '') {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(ME_KEY);
  signInMessage = message;
  route();
}

function route() {
  if (view) view.stop();
  view = null;
  notice('');
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
  const input = h('input', {id: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'off'});
  const error = h('p', {id: 'signin-error', class: 'form-error', role: 'alert'});
  notice(signInMessage);
  signInMessage = '';
  const button = h('button', {type: 'submit', id: 'signin-submit', class: 'primary'}, 'Sign in');
  const form = h('form', {id: 'signin', class: 'card narrow', novalidate: true},
    h('h1', {}, 'Sign in'),
    h('p', {class: 'muted', id: 'signin-text'}, 'Enter the admin token (SECKILL_ADMIN_TOKEN, or the one seckill printed when it started) ' +
      'or your personal token. It is kept in this browser tab only and forgotten when the tab closes.'),
    h('label', {for: 'token'}, 'Admin token or your personal token'),
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

function listHash(state, limit, offset) {
  const q = new URLSearchParams();
  if (state) q.set('state', state);
  if (limit !== PAGE_SIZES[0]) q.set('limit', limit);
  if (offset > 0) q.set('offset', offset);
  const s = q.toString();
  return s ? `#/?${s}` : '#/';
}

function listView(main, params) {
  const life = lifetime();
  const state = STATES.includes(params.get('state')) ? params.get('state') : '';
  const limit = PAGE_SIZES.includes(Number(params.get('limit'))) ? Number(params.get('limit')) : PAGE_SIZES[0];
  const offset = Math.max(0, Math.floor(Number(params.get('offset')) || 0));

  const stateSelect = h('select', {id: 'filter-state', onchange: () => { location.hash = listHash(stateSelect.value, limit, 0); }},
    h('option', {value: ''}, 'All states'),
    STATES.map(st => h('option', {value: st, selected: st === state}, st)));
  const sizeSelect = h('select', {id: 'page-size', onchange: () => { location.hash = listHash(state, Number(sizeSelect.value), 0); }},
    PAGE_SIZES.map(n => h('option', {value: n, selected: n === limit}, `${n} per page`)));
  const body = h('tbody', {id: 'activity-rows'});
  const table = h('table', {class: 'list', id: 'activities'},
    h('thead', {}, h('tr', {},
      h('th', {}, 'Name'), h('th', {}, 'State'), h('th', {}, 'Window'), h('th', {class: 'num'}, 'Stock'),
      h('th', {class: 'num', title: 'claimed in Redis / tokens issued / records in MySQL'}, 'Claimed / issued / recorded'))),
    body);
  const range = h('span', {id: 'page-range', class: 'muted'});
  const prev = h('button', {type: 'button', id: 'page-prev', disabled: offset === 0,
    onclick: () => { location.hash = listHash(state, limit, Math.max(0, offset - limit)); }}, '← Newer');
  const next = h('button', {type: 'button', id: 'page-next', disabled: true,
    onclick: () => { location.hash = listHash(state, limit, offset + limit); }}, 'Older →');

  main.append(
    h('div', {class: 'toolbar'},
      h('h1', {}, 'Activities'),
      h('label', {}, 'State', stateSelect),
      h('label', {}, 'Page size', sizeSelect),
      h('button', {type: 'button', id: 'refresh', onclick: () => route()}, 'Refresh'),
      may('create')
        ? h('a', {class: 'button primary', href: '#/new', id: 'new-activity'}, 'New activity')
        : h('button', {type: 'button', class: 'primary', id: 'new-activity', disabled: true, 'data-disabled-by': 'role',
          'aria-describedby': 'list-role-note'}, 'New activity')),
    may('create') ? null : h('p', {class: 'role-note', id: 'list-role-note'}, roleNote(['create activities'])),
    h('div', {class: 'card list-card'}, table, h('p', {class: 'empty', id: 'list-status'}, 'Loading…')),
    h('div', {class: 'pager'}, prev, range, next));

  (async () => {
    const q = new URLSearchParams({limit: limit + 1, offset}); // one more tells whether there is a next page
    if (state) q.set('state', state);
    let list;
    try {
      list = (await request('GET', `${API}?${q}`)).activities || [];
    } catch (e) {
      if (life.alive()) $('list-status').textContent = describe(e);
      return;
    }
    if (!life.alive()) return;
    const more = list.length > limit;
    list = list.slice(0, limit);
    next.disabled = !more;
    range.textContent = list.length ? `${offset + 1}–${offset + list.length}` : '';
    const status = $('list-status');
    if (list.length === 0) {
      status.textContent = offset > 0 ? 'No more activities.'
        : state ? `No activity is ${state}.` : 'No activities yet: create the first one.';
    } else {
      status.remove();
    }
    for (const a of list) {
      const counts = h('td', {class: 'num counts', 'data-label': 'Claimed / issued / recorded'}, '…');
      body.append(h('tr', {'data-id': a.id},
        h('td', {class: 'name', 'data-label': 'Name'}, h('a', {href: `#/activities/${a.id}`}, a.name)),
        h('td', {'data-label': 'State'}, badge(a.state)),
        h('td', {class: 'window', 'data-label': 'Window'}, fmtWindow(a.beginAt, a.endAt)),
        h('td', {class: 'num', 'data-label': 'Stock'}, fmtInt(a.stock)),
        counts));
      // The list answers no stats: each visible row asks for its own.
      request('GET', `${API}/${a.id}`).then(full => {
        const st = full.stats;
        counts.textContent = (full.state === 'open' || full.state === 'closed') && st
          ? `${fmtInt(st.claimed)} / ${fmtInt(st.issued)} / ${fmtInt(st.recorded)}` : '—';
      }, () => { counts.textContent = '?'; });
    }
  })();
  return life;
}

// --- create and edit --------------------------------------------------------

function formView(main, id) {
  const life = lifetime();
  if (!may(id ? 'edit' : 'create')) {
    main.append(h('p', {class: 'card role-note', id: 'form-role-note'}, roleNote([id ? 'edit activities' : 'create activities']), ' ',
      h('a', {href: id ? `#/activities/${id}` : '#/'}, id ? 'Back to the activity' : 'Back to the activities')));
    return life;
  }
  const inputs = {}, errors = {}, showUTC = {};
  let original = null; // the activity being edited

  const fields = FIELDS.map(f => {
    const input = f.type === 'textarea'
      ? h('textarea', {id: `f-${f.name}`, name: f.name, rows: 3})
      : h('input', {id: `f-${f.name}`, name: f.name, type: f.type, step: f.type === 'number' ? 1 : null,
        inputmode: f.type === 'number' ? 'numeric' : null, autocomplete: 'off'});
    inputs[f.name] = input;
    errors[f.name] = h('p', {id: `f-${f.name}-error`, class: 'field-error', role: 'alert'});
    let hint = f.hint;
    let utc = null;
    if (f.type === 'datetime-local') {
      hint = `${f.hint ? f.hint + '. ' : ''}In ${timeZone}`;
      utc = h('span', {class: 'utc'});
      const show = () => { const v = fromLocalInput(input.value); utc.textContent = v ? ` = ${v} UTC` : ''; };
      input.addEventListener('input', show);
      input.addEventListener('change', show);
      showUTC[f.name] = show;
    }
    input.addEventListener('input', () => { errors[f.name].textContent = ''; input.removeAttribute('aria-invalid'); });
    return h('div', {class: `field${f.wide ? ' wide' : ''}`, id: `field-${f.name}`},
      h('label', {for: input.id}, f.label), input,
      h('p', {class: 'hint'}, hint || '', utc),
      errors[f.name]);
  });
  const formError = h('p', {id: 'form-error', class: 'form-error', role: 'alert'});
  const submit = h('button', {type: 'submit', class: 'primary', id: 'save'}, id ? 'Save changes' : 'Create draft');
  const cancel = h('a', {class: 'button', href: id ? `#/activities/${id}` : '#/'}, 'Cancel');
  const form = h('form', {id: 'activity-form', class: 'card', novalidate: true},
    h('div', {class: 'form-grid'}, fields), formError, h('div', {class: 'form-actions'}, submit, cancel));
  const title = h('h1', {}, id ? 'Edit activity' : 'New activity');
  main.append(h('nav', {class: 'crumbs'}, h('a', {href: '#/'}, 'Activities'), ' / ', id ? `#${id}` : 'new'),
    h('div', {class: 'toolbar'}, title), form);

  const fill = a => {
    for (const f of FIELDS) {
      const v = a[f.name];
      inputs[f.name].value = f.type === 'datetime-local' ? (v ? toLocalInput(v) : '') : (v ?? '');
      if (showUTC[f.name]) showUTC[f.name]();
    }
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
        formError.textContent = `This activity is ${original.state}: only a draft can be edited.`;
        submit.disabled = true;
      }
      inputs.name.focus();
    })();
  } else {
    // A starting point: the next full hour, for one hour.
    const begin = new Date();
    begin.setMinutes(60, 0, 0);
    fill({perUserLimit: 1, beginAt: begin.toISOString(), endAt: new Date(begin.getTime() + 3600e3).toISOString()});
    inputs.name.focus();
  }

  const clearErrors = () => {
    formError.textContent = '';
    for (const f of FIELDS) {
      errors[f.name].textContent = '';
      inputs[f.name].removeAttribute('aria-invalid');
    }
  };

  const showError = (field, text) => {
    if (errors[field]) {
      errors[field].textContent = text;
      inputs[field].setAttribute('aria-invalid', 'true');
      inputs[field].focus();
    } else {
      formError.textContent = field ? `${field}: ${text}` : text;
    }
  };

  // body reads the form. An edit sends the fields that changed only, so
  // that what the form cannot show (seconds of a time) is kept.
  const body = () => {
    const out = {};
    for (const f of FIELDS) {
      const raw = inputs[f.name].value;
      let v;
      if (f.type === 'number') v = raw.trim() === '' ? null : Number(raw);
      else if (f.type === 'datetime-local') v = raw === '' ? null : fromLocalInput(raw);
      else v = f.name === 'name' ? raw.trim() : raw;
      if (original) {
        const was = f.type === 'datetime-local' ? toLocalInput(original[f.name]) : original[f.name];
        if ((f.type === 'datetime-local' ? raw : v) === was) continue;
        if (v === null || (f.required && v === '')) return {missing: f.name};
      }
      if (v !== null) out[f.name] = v;
    }
    return {out};
  };

  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    clearErrors();
    const {out, missing} = body();
    if (missing) {
      showError(missing, 'is required');
      return;
    }
    if (original && Object.keys(out).length === 0) {
      location.hash = `#/activities/${id}`;
      return;
    }
    submit.disabled = true;
    try {
      const a = id ? await request('PATCH', `${API}/${id}`, out) : await request('POST', API, out);
      if (life.alive()) location.hash = `#/activities/${a.id}`;
    } catch (e) {
      if (!life.alive()) return;
      if (e.code === 'invalid_request') {
        // "<field>: <text>": the message starts with the field's name.
        const m = e.message.match(/^([A-Za-z][A-Za-z0-9-]*): (.*)$/s);
        if (m) showError(m[1], m[2]);
        else showError('', e.message);
      } else if (e.code === 'invalid_state') {
        showError('', 'This activity is no longer a draft: it cannot be edited.');
      } else {
        showError('', describe(e));
      }
    } finally {
      submit.disabled = false;
    }
  });
  return life;
}

// --- one activity, live --------------------------------------------------

// convergence says where a sale is: idle (not open yet), selling, settling
// (numbers still moving into place) or converged.
function convergence(a) {
  const st = a.stats;
  if (!st || (a.state !== 'open' && a.state !== 'closed')) {
    return {status: 'idle', icon: '○', title: a.state === 'refused' ? 'Refused.' : 'Not open yet.',
      detail: a.state === 'refused' ? '' : 'The live numbers start when the activity opens.'};
  }
  const soldOut = st.claimed >= a.stock;
  const settled = st.claimed === st.issued && st.issued === st.recorded && st.inFlight === 0 &&
    st.surplus === a.stock - st.claimed;
  const numbers = `claimed = issued = recorded = ${fmtInt(st.claimed)}; MySQL surplus ${fmtInt(st.surplus)} = stock − claimed; nothing in flight.`;
  if (settled && (soldOut || a.state === 'closed')) {
    return {status: 'converged', icon: '✓',
      title: soldOut ? 'Sold out and converged.' : `Closed and converged: ${fmtInt(a.stock - st.claimed)} slots unsold.`,
      detail: numbers};
  }
  const pending = `issued ${fmtInt(st.issued)}, recorded ${fmtInt(st.recorded)}, in flight ${fmtInt(st.inFlight)}, surplus ${fmtInt(st.surplus)} (want ${fmtInt(a.stock - st.claimed)}).`;
  if (soldOut || a.state === 'closed') {
    return {status: 'settling', icon: '…', title: soldOut ? 'Sold out: settling.' : 'Closed: settling.', detail: pending};
  }
  return {status: 'selling', icon: '●', title: `Selling: ${fmtInt(a.stock - st.claimed)} of ${fmtInt(a.stock)} slots left.`, detail: ''};
}

function tile(id, label, note = '') {
  return h('div', {class: 'card tile'},
    h('div', {class: 'label'}, label),
    h('div', {class: 'value', id}, '—'),
    h('div', {class: 'note', id: `${id}-note`}, note));
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

  // The gauge: a ring whose arc is claimed / stock.
  const R = 50, C = 2 * Math.PI * R;
  const arc = s('circle', {class: 'value', cx: 60, cy: 60, r: R, 'stroke-dasharray': C.toFixed(2),
    'stroke-dashoffset': C.toFixed(2), transform: 'rotate(-90 60 60)'});
  const pct = s('text', {class: 'pct', x: 60, y: 62, 'text-anchor': 'middle', id: 'gauge-pct'}, '0 %');
  const gauge = s('svg', {class: 'gauge', viewBox: '0 0 120 120', role: 'img', id: 'gauge', 'aria-label': 'claimed of stock'},
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
  const editLink = h('button', {type: 'button', id: 'action-edit', onclick: () => { location.hash = `#/activities/${id}/edit`; }}, 'Edit');
  const buttons = ACTIONS.map(act => h('button', {type: 'button', id: `action-${act.name}`, class: act.style,
    'data-action': act.name, disabled: true, onclick: () => run(act)}, act.label));
  const stockButton = h('button', {type: 'button', id: 'action-stock', disabled: true,
    onclick: () => { stockForm.hidden = !stockForm.hidden; if (!stockForm.hidden) { stockInput.value = a.stock; stockInput.focus(); } }},
  'Change stock');
  const exportButton = h('button', {type: 'button', id: 'export-csv', disabled: true, onclick: () => exportCSV()}, 'Export winners (CSV)');
  const exportStatus = h('span', {id: 'export-status', class: 'muted', role: 'status'});

  // Open by schedule: a draft's or an approved activity's switch.
  const autoOpen = h('input', {type: 'checkbox', id: 'auto-open', disabled: true, onchange: () => setAutoOpen(autoOpen.checked)});
  const autoOpenRow = h('p', {class: 'switch-row'}, h('label', {for: 'auto-open'}, autoOpen,
    ' Open by itself when it begins'), h('span', {class: 'muted', id: 'auto-open-note'}));

  // The stock change: a number, then a confirmation.
  const stockInput = h('input', {id: 'stock-input', type: 'number', min: 1, step: 1, inputmode: 'numeric', autocomplete: 'off'});
  const stockError = h('p', {id: 'stock-error', class: 'field-error', role: 'alert'});
  const stockForm = h('form', {id: 'stock-form', class: 'card stock-form', novalidate: true, hidden: true},
    h('label', {for: 'stock-input'}, 'New stock'), stockInput,
    h('p', {class: 'hint'}, 'Raise it to sell more slots at once; lower it down to the slots already claimed.'),
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
  const status = h('div', {class: 'status', id: 'live-status', 'data-status': 'idle', 'aria-live': 'polite'},
    h('span', {class: 'icon', id: 'live-status-icon'}),
    h('div', {}, h('div', {id: 'live-status-title'}), h('div', {class: 'detail', id: 'live-status-detail'})));
  const updated = h('p', {class: 'updated', id: 'live-updated'});
  const roleNoteEl = h('p', {class: 'role-note', id: 'role-note'});
  const fourEyesNote = h('p', {class: 'role-note', id: 'four-eyes-note'});
  const audit = may('audit') ? auditSection(id, life) : null;
  let auditSeen = null, auditAt = 0;

  main.append(
    h('nav', {class: 'crumbs'}, h('a', {href: '#/'}, 'Activities'), ' / ', h('span', {id: 'crumb-id'}, `#${id}`)),
    h('div', {class: 'detail-head'}, name, state),
    description, facts,
    autoOpenRow,
    h('div', {class: 'actions', 'aria-describedby': 'role-note four-eyes-note'},
      editLink, stockButton, exportButton, h('span', {class: 'spacer'}), buttons),
    roleNoteEl, fourEyesNote,
    exportStatus, stockForm,
    h('section', {class: 'live', id: 'live', 'aria-label': 'live view'},
      h('div', {class: 'card gauge-card'}, gauge,
        h('p', {class: 'gauge-caption'}, h('strong', {id: 'gauge-claimed', class: 'num'}, '—'), ' of ',
          h('span', {id: 'gauge-stock', class: 'num'}, '—'), ' slots claimed')),
      h('div', {class: 'side'},
        status,
        h('div', {class: 'tiles'},
          tile('live-jps', 'Joins per second', 'from tokens issued'),
          tile('live-inflight', 'In flight', 'claims not yet issued or given back'),
          tile('live-issued', 'Issued', 'tokens handed out'),
          tile('live-recorded', 'Recorded', 'participation rows in MySQL'),
          tile('live-surplus', 'MySQL surplus', ''),
          tile('live-reconciled', 'Reconciled at', '')),
        h('div', {class: 'card spark-card'},
          h('div', {class: 'spark-head'}, h('span', {}, `Joins per second, last ${SPARK_SAMPLES} samples`),
            h('span', {}, 'peak ', h('strong', {id: 'live-jps-peak', class: 'num'}, '0'))),
          spark),
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
      ['Last change', fmtTime(a.updatedAt)],
    ].map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v))));
    const verbs = [];
    allow(editLink, verbs, {state: a.state === 'draft', stateWhy: 'Only a draft can be edited', role: may('edit'), verb: 'edit'});
    const eyes = fourEyes(a);
    for (const b of buttons) {
      const act = ACTIONS.find(x => x.name === b.dataset.action);
      allow(b, verbs, {state: a.state === act.from, stateWhy: `Allowed only when the activity is ${act.from}`,
        role: may(act.name), verb: act.name, eyes: act.from === 'draft' ? eyes : ''});
    }
    allow(stockButton, verbs, {state: ['draft', 'approved', 'open'].includes(a.state),
      stateWhy: 'A refused or closed activity keeps its stock', role: may('stock'), verb: 'change the stock'});
    if (stockButton.disabled) stockForm.hidden = true;
    allow(exportButton, verbs, {state: a.state === 'open' || a.state === 'closed',
      stateWhy: 'Only an open or closed activity has winners', role: may('export'), verb: 'export the winners'});
    autoOpen.checked = !!a.autoOpen;
    // On a draft the switch is an edit, an editor's; once approved, an
    // operator's.
    allow(autoOpen, verbs, {state: a.state === 'draft' || a.state === 'approved', stateWhy: 'Only a draft or an approved activity',
      role: may(a.state === 'draft' ? 'edit' : 'autoOpen'), verb: 'switch “Open by itself”'});
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

    const st = a.stats || {claimed: 0, inFlight: 0, issued: 0, recorded: 0, surplus: a.stock, reconciledAt: null};
    const frac = a.stock > 0 ? Math.min(1, st.claimed / a.stock) : 0;
    arc.setAttribute('stroke-dashoffset', (C * (1 - frac)).toFixed(2));
    gauge.classList.toggle('full', frac >= 1);
    if (!gauge.classList.contains('animated')) requestAnimationFrame(() => gauge.classList.add('animated'));
    pct.textContent = `${Math.floor(frac * 100)} %`;
    $('gauge-claimed').textContent = fmtInt(st.claimed);
    $('gauge-stock').textContent = fmtInt(a.stock);
    $('live-inflight').textContent = fmtInt(st.inFlight);
    $('live-issued').textContent = fmtInt(st.issued);
    $('live-recorded').textContent = fmtInt(st.recorded);
    $('live-surplus').textContent = fmtInt(st.surplus);
    const want = a.stock - st.claimed;
    const surplusNote = $('live-surplus-note');
    surplusNote.textContent = st.surplus === want ? `= stock − claimed (${fmtInt(want)})` : `stock − claimed is ${fmtInt(want)}`;
    surplusNote.classList.toggle('bad', st.surplus !== want);
    $('live-reconciled').textContent = st.reconciledAt ? clockFormat.format(new Date(st.reconciledAt)) : 'not yet';
    $('live-reconciled').classList.add('small');
    $('live-reconciled-note').textContent = st.reconciledAt ? `${ago(st.reconciledAt)}, MySQL snapshot` : 'the job has not written a snapshot';

    const jps = rates.length ? rates[rates.length - 1] : null;
    $('live-jps').textContent = jps === null ? '—' : fmtInt(Math.round(jps));
    $('live-jps-peak').textContent = fmtInt(Math.round(peak));
    const top = Math.max(peak, 1);
    const pts = rates.slice(-SPARK_SAMPLES).map((r, i, all) => `${(SPARK_SAMPLES - all.length + i)},${(100 - (r / top) * 96).toFixed(1)}`);
    sparkLine.setAttribute('points', pts.join(' '));
    sparkArea.setAttribute('points', pts.length ? `${pts[0].split(',')[0]},100 ${pts.join(' ')} ${SPARK_SAMPLES - 1},100` : '');

    const c = convergence(a);
    status.dataset.status = c.status;
    $('live-status-icon').textContent = c.icon;
    $('live-status-title').textContent = c.title;
    $('live-status-detail').textContent = c.detail;
  };

  // sample records a poll's issued counter and derives joins per second.
  const sample = () => {
    const now = performance.now();
    const issued = a.stats ? a.stats.issued : 0;
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

  const poll = async () => {
    if (!document.hidden) {
      try {
        const got = await request('GET', `${API}/${id}`);
        if (!life.alive()) return;
        a = got;
        sample();
        render();
        updated.textContent = `Updated ${clockFormat.format(new Date())}, every ${POLL_MS / 1000} s`;
        notice('');
      } catch (e) {
        if (!life.alive()) return;
        if (e.code === 'not_found') {
          main.replaceChildren(h('p', {class: 'card'}, `No activity #${id}. `, h('a', {href: '#/'}, 'Back to the activities')));
          return;
        }
        notice(`${describe(e)} Retrying…`, 'error');
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
    if (!await confirmAction(`${act.label} activity`, act.ask(a), act.label, act.style)) return;
    for (const b of buttons) b.disabled = true;
    try {
      const next = await request('POST', `${API}/${id}/${act.name}`);
      if (!life.alive()) return;
      a = {...next, stats: a.stats};
      render();
      notice('');
    } catch (e) {
      if (!life.alive()) return;
      notice(describe(e), 'error');
      render();
    }
    poll();
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

$('tz').textContent = timeZone;
$('sign-out').addEventListener('click', () => signOut('Signed out.'));
window.addEventListener('hashchange', route);
route();
