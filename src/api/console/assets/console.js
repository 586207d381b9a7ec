// The console's script: signs in, fetches what the page shows from /api/console/…,
// refetches it when the agent says the store changed (a stream of server-sent events),
// and sends what the operator does to the same endpoints as every other client. No
// framework, no build.
//
// The session is an id in sessionStorage, sent in the X-Protowatch-Session header:
// storage belongs to this origin (its port included) and this tab, unlike a cookie,
// which the browser would send to any server on 127.0.0.1.
'use strict';

const SESSION = 'protowatch-session';
const session = () => sessionStorage.getItem(SESSION);
const auth = () => ({ 'X-Protowatch-Session': session() || '' });

const $ = (sel) => document.querySelector(sel);
const state = { offset: 0, limit: 100, severity: '', event: '', q: '', hoffset: 0, hlimit: 50 };

// The DOM is built with text nodes: nothing from the agent becomes markup except
// `details`, which the agent sanitized (and the page's CSP allows no script anyway).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function showError(text) {
  const m = $('#message');
  m.textContent = text;
  m.hidden = !text;
}

// The session ended (expired, signed out, the token rotated, the agent restarted):
// the form again.
function signedOut(text) {
  sessionStorage.removeItem(SESSION);
  showSignIn(text);
}

async function api(method, path, body) {
  const opts = { method, credentials: 'omit', headers: auth() };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  if (r.status === 401) {
    signedOut('Your session ended; sign in again.');
    throw new Error('signed out');
  }
  if (!r.ok) {
    let text = r.status + ' ' + r.statusText;
    try { text = (await r.json()).error || text; } catch (e) { /* not JSON */ }
    throw new Error(text);
  }
  return r.status === 204 ? null : r.json();
}

// Runs what a button does; a failure is shown, a success refreshes.
async function act(button, method, path, body) {
  button.disabled = true;
  try {
    await api(method, path, body);
    showError('');
    statusStamp = 0; // what was done shows in the summary too
    refresh();
  } catch (e) {
    showError(button.textContent + ': ' + e.message);
    button.disabled = false;
  }
}

const pad = (n) => String(n).padStart(2, '0');
function time(s) {
  if (s === null || s === undefined) return '—';
  const d = new Date(s * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
// A moment in a table: the time alone when it is today, the day too within the year;
// the whole date and time on hover. Two full timestamps took the message's room.
function shortTime(s) {
  if (s === null || s === undefined) return '—';
  const d = new Date(s * 1000);
  const now = new Date();
  const hms = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (d.toDateString() === now.toDateString()) return hms;
  if (d.getFullYear() === now.getFullYear()) return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hms.slice(0, 5)}`;
  return time(s).slice(0, 16);
}
function timeCell(cls, s) {
  return el('td', { class: 'time ' + cls, title: time(s), text: shortTime(s) });
}
function span(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 120) return s + ' s';
  if (s < 7200) return Math.round(s / 60) + ' min';
  if (s < 172800) return Math.round(s / 3600) + ' h';
  return Math.round(s / 86400) + ' d';
}
// How far off a moment is: "in 1 h 20 min", "5 min ago" (as `alerts list` says it).
function relative(seconds) {
  const abs = Math.abs(seconds);
  if (abs < 30) return 'now';
  const mins = Math.ceil(abs / 60);
  let words;
  if (mins < 60) words = mins + ' min';
  else if (mins < 2880) words = Math.floor(mins / 60) + ' h' + (mins % 60 ? ' ' + (mins % 60) + ' min' : '');
  else words = Math.floor(mins / 1440) + ' d';
  return seconds > 0 ? 'in ' + words : words + ' ago';
}
function bytes(n) {
  if (n === null || n === undefined) return '—';
  if (n < 1024) return n + ' B';
  if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
  return (n / 1048576).toFixed(1) + ' MiB';
}
// The file's name, whole on one line (a name broken mid-word reads as three names),
// its whole path on hover (and in the Files table).
const fileCell = (path) => el('td', { class: path ? 'file' : 'file none', title: path || undefined,
  text: path ? path.split(/[\\/]/).pop() : '—' });
// A whole path may break only after a separator, never inside a name.
function pathCell(path) {
  const td = el('td', { class: 'path' });
  for (const part of (path || '—').split(/(?<=[\\/])/)) td.append(part, el('wbr'));
  return td;
}
const sevCell = (level) => el('td', { class: 'c-sev' }, el('span', { class: 'sev', text: level }));

// On a phone the tables are cards, and a card's cell says what it is: the column's
// heading, copied onto each cell for the stylesheet to show.
function label(table) {
  const heads = [...table.querySelectorAll('thead th')].map((th) => th.textContent);
  for (const tr of table.tBodies[0].rows) {
    [...tr.cells].forEach((td, i) => { if (heads[i]) td.dataset.label = heads[i]; });
  }
}

// OnTakt's client algorithm: `__name` is a server action (POST), `_name` a client action
// this page does not have (shown, disabled), anything else a URL to open.
function actionControl(alert, label, action) {
  if (action.startsWith('__')) {
    return el('button', {
      type: 'button', 'data-action': action, text: label,
      onclick: (ev) => act(ev.currentTarget, 'POST',
        `/api/alerts/${alert.id}/action/${encodeURIComponent(action)}`),
    });
  }
  if (action.startsWith('_')) {
    return el('button', { type: 'button', disabled: true, title: `client action ${action}`, text: `${label} (${action})` });
  }
  if (/^https?:\/\//i.test(action) || /^\/(?!\/)/.test(action)) {
    return el('a', { href: action, target: '_blank', rel: 'noopener noreferrer', text: label });
  }
  return el('span', { text: label });
}

// A protocol alert carries `__ack`, `__dismiss` and an hour's `__snooze` as OnTakt
// buttons; the console's own Acknowledge, Dismiss and Snooze 1h do exactly that, so they
// are not shown twice.
function sameAsOwnButton(a, action) {
  if (action === '__dismiss' || action === '__ack') return true;
  const s = a.data && a.data.snooze_s;
  return action === '__snooze' && (s === undefined || s === 3600);
}

function alertRow(a, now) {
  const msg = el('td', {}, el('div', { class: 'msg', text: a.message }));
  if (a.source) msg.append(el('div', { class: 'source', text: a.source }));
  if (a.snoozed_until && a.snoozed_until > now) {
    msg.append(el('div', { class: 'snoozed', text: 'messages snoozed until ' + time(a.snoozed_until) }));
  }
  if (a.acknowledged_by) {
    msg.append(el('div', { class: 'acked', text: `acknowledged by ${a.acknowledged_by} at ${time(a.acknowledged_at)}` }));
  }
  if (a.silenced_by && a.silenced_by.length) {
    msg.append(el('div', { class: 'silenced', text: `silenced (${a.silenced_by.join(', ')})` }));
  } else if (a.next_step) {
    msg.append(el('div', { class: 'next-step', text: a.next_step }));
  }
  if (a.details) {
    const body = el('div', { class: 'details' });
    body.innerHTML = a.details; // sanitized by the agent
    msg.append(el('details', { class: 'more' }, el('summary', { text: 'details' }), body));
  }
  const ttl = a.ttl === null ? '—' : span((a.ends_at || 0) - now) + ' left';
  // Two buttons on the row, the rest behind "More": five buttons wrapped to two lines
  // and made every row twice as tall.
  const actions = el('td', { class: 'c-actions' }, el('div', { class: 'actions' },
    a.acknowledged_by ? null : el('button', { type: 'button', class: 'ack', text: 'Acknowledge',
      onclick: (ev) => act(ev.currentTarget, 'POST', `/api/alerts/${a.id}/ack`) }),
    el('button', { type: 'button', class: 'dismiss', text: 'Dismiss',
      onclick: (ev) => act(ev.currentTarget, 'DELETE', `/api/alerts/${a.id}`) }),
    el('details', { class: 'menu' }, el('summary', { text: 'More' }), el('div', { class: 'menu-items' },
    el('button', { type: 'button', class: 'snooze', text: 'Snooze 1h',
      onclick: (ev) => act(ev.currentTarget, 'POST', `/api/alerts/${a.id}/snooze`, { seconds: 3600 }) }),
    el('button', { type: 'button', class: 'snooze', text: 'Snooze 4h',
      onclick: (ev) => act(ev.currentTarget, 'POST', `/api/alerts/${a.id}/snooze`, { seconds: 14400 }) }),
    (a.silenced_by && a.silenced_by.length) ? null : el('button', { type: 'button', class: 'silence', text: 'Silence 2 h',
      onclick: (ev) => act(ev.currentTarget, 'POST', '/api/silences',
        { matchers: { key: a.key }, duration: '2h', comment: 'from the console' }) }),
    ...Object.entries(a.actions || {})
      .filter(([, action]) => !sameAsOwnButton(a, action))
      .map(([name, action]) => actionControl(a, name, action)),
    )),
  ));
  msg.classList.add('c-msg');
  return el('tr', { class: 'sev-' + a.level, 'data-id': a.id, 'data-key': a.key },
    sevCell(a.level), msg,
    el('td', { class: 'c-event', text: a.event }),
    fileCell(a.file),
    el('td', { class: 'num c-seen', text: String(a.times_seen) }),
    timeCell('c-first', a.timestamp),
    timeCell('c-last', a.last_seen),
    el('td', { class: 'time c-ttl', text: ttl }),
    actions);
}

let eventsShown = '';
async function loadAlerts() {
  const p = new URLSearchParams({ offset: state.offset, limit: state.limit });
  if (state.severity) p.set('severity', state.severity);
  if (state.event) p.set('event', state.event);
  if (state.q) p.set('q', state.q);
  const d = await api('GET', '/api/console/alerts?' + p);
  loaded();
  if (d.instrument) $('#instrument').textContent = '— ' + d.instrument;
  for (const k of ['total', 'major', 'minor', 'warning', 'info']) $('#count-' + k).textContent = d.counts[k];
  document.title = (d.counts.total ? `(${d.counts.total}) ` : '') + 'protowatch console';
  const events = d.events.map((e) => e.event).join('\n');
  if (events !== eventsShown) {
    eventsShown = events;
    const sel = $('#f-event');
    sel.replaceChildren(el('option', { value: '', text: 'all' }),
      ...d.events.map((e) => el('option', { value: e.event, text: `${e.event} (${e.count})` })));
    sel.value = state.event;
  }
  if (d.offset > 0 && d.alerts.length === 0 && d.matching > 0) {
    state.offset = Math.max(0, Math.floor((d.matching - 1) / state.limit) * state.limit);
    return loadAlerts();
  }
  // The rows are drawn again on every change: a menu or details someone opened stay
  // open, or a burst of news would close them under the operator's finger.
  const opened = new Set([...document.querySelectorAll('#alerts tbody details[open]')]
    .map((x) => x.closest('tr').dataset.id + ' ' + x.className));
  const frag = document.createDocumentFragment();
  for (const a of d.alerts) frag.append(alertRow(a, d.now));
  for (const x of frag.querySelectorAll('details')) {
    if (opened.has(x.closest('tr').dataset.id + ' ' + x.className)) x.open = true;
  }
  $('#alerts tbody').replaceChildren(frag);
  label($('#alerts'));
  $('#empty').hidden = d.alerts.length > 0;
  const first = d.alerts.length ? d.offset + 1 : 0;
  $('#range').textContent = `${first}–${d.offset + d.alerts.length} of ${d.matching}`;
  $('#prev').disabled = d.offset === 0;
  $('#next').disabled = d.offset + d.alerts.length >= d.matching;
  $('#clear-all').disabled = d.counts.total === 0;
  $('#clear-all').dataset.total = d.counts.total;
  if (!performance.getEntriesByName('alerts-shown').length) {
    // The first page of alerts on screen: the next frame after it is in the DOM.
    requestAnimationFrame(() => performance.mark('alerts-shown'));
  }
}

async function loadHistory() {
  if (!$('#history-details').open) {
    const d = await api('GET', '/api/console/history?limit=1');
    $('#history-total').textContent = d.total;
    return;
  }
  const d = await api('GET', `/api/console/history?offset=${state.hoffset}&limit=${state.hlimit}`);
  $('#history-total').textContent = d.total;
  $('#history tbody').replaceChildren(...d.alerts.map((a) => el('tr', { class: 'sev-' + a.level, 'data-id': a.id },
    sevCell(a.level), el('td', { class: 'msg', text: a.message }), el('td', { text: a.event }),
    fileCell(a.file), el('td', { class: 'num', text: String(a.times_seen) }),
    el('td', { class: 'time', text: time(a.dismissed_at || a.ends_at) }),
    el('td', { text: a.dismissed_at ? 'dismissed' : 'expired' }))));
  label($('#history'));
  $('#hrange').textContent = `${d.alerts.length ? d.offset + 1 : 0}–${d.offset + d.alerts.length} of ${d.total}`;
  $('#hprev').disabled = d.offset === 0;
  $('#hnext').disabled = d.offset + d.alerts.length >= d.total;
}

async function loadFiles() {
  const files = await api('GET', '/api/console/files');
  const now = Date.now() / 1000;
  $('#files tbody').replaceChildren(...files.map((f) => el('tr', {},
    pathCell(f.path), el('td', { class: 'num', text: bytes(f.offset) }),
    el('td', { class: 'num', text: f.size === null ? 'missing' : bytes(f.size) }),
    el('td', { class: 'num', text: bytes(f.lag_bytes) }), el('td', { text: f.encoding || '—' }),
    el('td', { class: 'time', text: time(f.last_line_at) + ' (' + span(now - f.last_line_at) + ' ago)' }))));
  label($('#files'));
}

// When a queued message is tried again: seconds matter here (a first retry is soon).
function nextTry(seconds) {
  if (seconds <= 0) return 'now';
  return seconds < 60 ? `in ${Math.round(seconds)} s` : relative(seconds);
}

async function loadOutbox() {
  const d = await api('GET', '/api/console/outbox');
  // Why it has not gone and when it is tried again, as `outbox list` tells it: a
  // count alone ("10 queued, 2 min") does not say whether to wait or act.
  $('#queues tbody').replaceChildren(...d.queues.map((q) => el('tr', { 'data-destination': q.destination },
    el('td', { text: q.destination }), el('td', { class: 'num', text: String(q.queued) }),
    el('td', { text: span(q.oldest_age_s) }),
    el('td', { class: 'num', text: String(q.attempts) }),
    el('td', { class: 'error', text: q.last_error || (q.attempts ? '' : 'not tried yet') }),
    el('td', { class: 'time next', title: time(q.next_attempt_at),
      text: nextTry(q.next_attempt_at - d.now) }))));
  label($('#queues'));
  $('#queues-empty').hidden = d.queues.length > 0;
  $('#dead-total').textContent = d.dead_total;
  $('#dead tbody').replaceChildren(...d.dead.map((r) => el('tr', { 'data-id': r.id },
    el('td', { class: 'num', text: String(r.id) }), el('td', { text: r.destination }),
    el('td', { text: r.event }), el('td', { class: 'num', text: String(r.attempts) }),
    el('td', { text: r.error || '' }), el('td', { class: 'time', text: time(r.created_at) }),
    el('td', {}, el('button', { type: 'button', class: 'retry', text: 'Retry',
      onclick: (ev) => act(ev.currentTarget, 'POST', `/api/outbox/${r.id}/retry`) })))));
  label($('#dead'));
}

async function loadSilences() {
  const d = await api('GET', '/api/console/silences');
  $('#silences-total').textContent = d.silences.length;
  $('#silences tbody').replaceChildren(...d.silences.map((x) => el('tr', { 'data-id': x.id },
    el('td', { class: 'num', text: String(x.id) }), el('td', { text: x.describe }),
    el('td', { class: 'time', title: time(x.ends_at), text: (x.active ? '' : 'from ' + time(x.starts_at) + ', ends ') + relative(x.ends_at - d.now) }),
    el('td', { text: x.created_by }), el('td', { text: x.comment }),
    el('td', { class: 'num', text: String(x.held) }),
    el('td', {}, el('button', { type: 'button', class: 'end', text: 'End',
      onclick: (ev) => act(ev.currentTarget, 'DELETE', `/api/silences/${x.id}`) })))));
  label($('#silences'));
  $('#silences-empty').hidden = d.silences.length > 0;
}

let statusStamp = 0;
async function loadStatus() {
  // At most every 5 s, like the charts: a day's summary does not move faster.
  if (Date.now() - statusStamp < 5000) return;
  statusStamp = Date.now();
  const d = await api('GET', '/api/console/status');
  $('#status').textContent = d.text;
  showWatchWarnings(d.watch);
}

// Watch entries that see nothing at all (a folder that never existed, a typo): said at
// the top, as nothing else on the page would show it.
function showWatchWarnings(lines) {
  const box = $('#watch-warnings');
  box.replaceChildren(...(lines || []).map((t) => el('li', { text: t })));
  box.hidden = box.childElementCount === 0;
}

async function loadRoutes() {
  const d = await api('GET', '/api/console/routes');
  $('#routes tbody').replaceChildren(...d.routes.map((r) => el('tr', { class: 'from-' + r.from },
    el('td', { text: r.event }), el('td', { text: r.to.length ? r.to.join(', ') : 'nowhere' }),
    el('td', { text: r.from === 'bec' ? 'BEC' : r.from }))));
  label($('#routes'));
}

let chartStamp = 0;
let chartWidth = 0;
function loadCharts() {
  // At most every 5 s: a burst changes the store many times a second.
  if (Date.now() - chartStamp < 5000) return;
  chartStamp = Date.now();
  // Drawn for the width it has and shown at its own size: a wide drawing shrunk onto
  // a phone had 5 px text.
  chartWidth = Math.round($('#chart-section').clientWidth) || 760;
  for (const range of ['24h', '7d']) {
    // An <img> cannot send the session header: fetched, then shown from memory.
    fetch(`/api/console/chart.svg?range=${range}&width=${chartWidth}`, { headers: auth(), credentials: 'omit' })
      .then((r) => (r.ok ? r.blob() : null))
      .then((b) => {
        if (!b) return;
        const img = $('#chart-' + range);
        if (img.src.startsWith('blob:')) URL.revokeObjectURL(img.src);
        img.src = URL.createObjectURL(b);
      })
      .catch(() => {});
  }
}

let running = false;
let again = false;
// Fetches everything shown; a call while one runs makes one more run after it.
async function refresh() {
  if (running) { again = true; return; }
  running = true;
  try {
    await Promise.all([loadAlerts(), loadSilences(), loadStatus(), loadHistory(), loadFiles(), loadOutbox()]);
    loadCharts();
  } catch (e) {
    if (e.message !== 'signed out') showError(e.message);
  } finally {
    running = false;
    if (again) { again = false; refresh(); }
  }
}

// What the dot says. "live" only when the stream is up and the page holds data: before
// its first data the page said "0 active alerts" and "live" — an all-clear it did not
// know. Until then the counts are "…" and the status says "loading…".
let streamUp = false;
let hasData = false;
function showLive() {
  const status = $('#live-status');
  let state;
  if (!streamUp) state = status.dataset.state === 'down' ? 'down' : 'connecting';
  else state = hasData ? 'live' : 'loading';
  status.dataset.state = state;
  status.textContent = { down: 'reconnecting…', connecting: 'connecting…', loading: 'loading…', live: 'live' }[state];
}
function loaded() {
  if (hasData) return;
  hasData = true;
  $('#alerts-section').removeAttribute('aria-busy');
  $('#loading').hidden = true;
  showLive();
}
function loading() {
  hasData = false;
  $('#alerts-section').setAttribute('aria-busy', 'true');
  $('#loading').hidden = false;
  $('#empty').hidden = true;
  for (const k of ['total', 'major', 'minor', 'warning', 'info']) $('#count-' + k).textContent = '…';
  showLive();
}

// The live stream, read with fetch (EventSource cannot send the session header).
let stream = null;
async function connect() {
  const status = $('#live-status');
  const me = new AbortController();
  stream = me;
  let retry = 2000;
  try {
    const r = await fetch('/api/console/events', { headers: auth(), credentials: 'omit', cache: 'no-store', signal: me.signal });
    if (r.status === 401) { signedOut('Your session ended; sign in again.'); return; }
    if (!r.ok || !r.body) throw new Error(String(r.status));
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let event = '', data = '';
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data = line.slice(6);
          else if (line.startsWith('retry: ')) retry = Number(line.slice(7)) || retry;
        }
        if (event === 'hello') {
          status.dataset.change = 'hello';
          streamUp = true;
          showLive();
          // After a reconnection anything may have changed.
          chartStamp = 0;
          loadRoutes().catch(() => {});
          refresh();
        } else if (event === 'change') {
          status.dataset.change = data;
          refresh();
        }
      }
    }
  } catch (e) { /* down: try again below */ }
  if (stream !== me || !session()) return;
  streamUp = false;
  status.dataset.state = 'down';
  showLive();
  setTimeout(() => { if (stream === me && session()) connect(); }, retry);
}

function showSignIn(text) {
  if (stream) { stream.abort(); stream = null; }
  streamUp = false;
  $('#console').hidden = true;
  $('#signin').hidden = false;
  const err = $('#signin-error');
  err.textContent = text || '';
  err.hidden = !text;
  $('#token').focus();
}

async function signIn(token) {
  const r = await fetch('/signin', {
    method: 'POST', credentials: 'omit',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ token }),
  });
  let body = {};
  try { body = await r.json(); } catch (e) { /* not JSON */ }
  if (!r.ok || !body.session) {
    showSignIn(body.error || 'Signing in failed: ' + r.status);
    return false;
  }
  sessionStorage.setItem(SESSION, body.session);
  return true;
}

let started = false;
function start() {
  $('#signin').hidden = true;
  $('#console').hidden = false;
  if (!started) {
    started = true;
    wire();
    // Ages and time-to-live move without the store changing.
    setInterval(() => { if (session()) { chartStamp = 0; statusStamp = 0; refresh(); } }, 60000);
    // A turned phone or a resized window: the charts drawn again for the new width.
    window.addEventListener('resize', debounce(() => {
      if (session() && Math.round($('#chart-section').clientWidth) !== chartWidth) { chartStamp = 0; loadCharts(); }
    }, 300));
  }
  $('#live-status').dataset.state = 'connecting';
  loading();
  refresh();
  loadRoutes().catch((e) => showError(e.message));
  connect();
}

function debounce(f, ms) {
  let t;
  return (...args) => { clearTimeout(t); t = setTimeout(() => f(...args), ms); };
}

function wire() {
  $('#f-severity').addEventListener('change', (e) => { state.severity = e.target.value; state.offset = 0; refresh(); });
  $('#f-event').addEventListener('change', (e) => { state.event = e.target.value; state.offset = 0; refresh(); });
  $('#f-text').addEventListener('input', debounce((e) => { state.q = e.target.value; state.offset = 0; refresh(); }, 250));
  $('#filters').addEventListener('submit', (e) => e.preventDefault());
  // An open "More" closes when the operator clicks anywhere else, as a menu does.
  document.addEventListener('click', (e) => {
    for (const m of document.querySelectorAll('details.menu[open]')) if (!m.contains(e.target)) m.open = false;
  });
  $('#prev').addEventListener('click', () => { state.offset = Math.max(0, state.offset - state.limit); refresh(); });
  $('#next').addEventListener('click', () => { state.offset += state.limit; refresh(); });
  $('#hprev').addEventListener('click', () => { state.hoffset = Math.max(0, state.hoffset - state.hlimit); loadHistory(); });
  $('#hnext').addEventListener('click', () => { state.hoffset += state.hlimit; loadHistory(); });
  $('#history-details').addEventListener('toggle', () => loadHistory().catch((e) => showError(e.message)));
  $('#clear-all').addEventListener('click', (ev) => {
    const n = ev.currentTarget.dataset.total || 'all';
    if (window.confirm(`Dismiss all ${n} active alerts?`)) act(ev.currentTarget, 'POST', '/api/alerts/clear');
  });
  $('#signout').addEventListener('click', async () => {
    try { await fetch('/signout', { method: 'POST', headers: auth(), credentials: 'omit' }); } catch (e) { /* ended here anyway */ }
    signedOut('');
  });
}

document.addEventListener('DOMContentLoaded', async () => {
  $('#signin-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = $('#token');
    if (await signIn(input.value.trim())) { input.value = ''; start(); }
  });
  // `/?token=…` signs in once; the token leaves the address bar and the history.
  const given = new URLSearchParams(location.search).get('token');
  if (given !== null) {
    history.replaceState(null, '', '/');
    if (!(await signIn(given))) return;
  }
  if (session()) start(); else showSignIn('');
});
