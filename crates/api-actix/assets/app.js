// The dashboard: sign-in, "API keys" and "Credits". Plain ES modules, no build step
// (docs/dashboard.md). Everything user-supplied is written with textContent, never as HTML.

import { api, ApiError, forgetSession, keepSession, sessionEmail, token } from './api.js';
import { sentence } from './errors.js';
import { createChart, drawChart } from './chart.js';

const POLL_MS = 3000;
const $ = (id) => document.getElementById(id);
const views = ['sign-in', 'landing', 'switch', 'keys', 'credits'];

let pollTimer = null;
let ledgerCursor = null;

// ---------------------------------------------------------------- messages

function banner(text, kind = 'error') {
  const b = $('banner');
  b.textContent = text;
  b.className = `banner ${kind}`;
  b.hidden = !text;
}

/** Shows an API failure as a sentence; a 401 sends the person back to sign-in. */
function showError(err) {
  if (err instanceof ApiError) {
    if (err.status === 401 && token() !== null) {
      forgetSession();
      go('/app/sign-in', sentence(401, err.body, null));
      return;
    }
    if (err.status === 401) {
      go('/app/sign-in', sentence(401, err.body, null));
      return;
    }
    banner(sentence(err.status, err.body, err.retryAfter));
    return;
  }
  banner(sentence(0, null, null));
}

// Exposed for the browser tests of the 402 sentence, which no dashboard action can produce.
window.jtShowApiError = (status, body, retryAfter) => showError(new ApiError(status, body, retryAfter ?? null));

// ---------------------------------------------------------------- routing

function show(view) {
  for (const v of views) $(`view-${v}`).hidden = v !== view;
  const signedIn = view === 'keys' || view === 'credits';
  $('nav').hidden = !signedIn;
  for (const [id, v] of [['nav-keys', 'keys'], ['nav-credits', 'credits']]) {
    if (v === view) $(id).setAttribute('aria-current', 'page');
    else $(id).removeAttribute('aria-current');
  }
  if (pollTimer) {
    clearInterval(pollTimer);
    pollTimer = null;
  }
}

function go(path, message) {
  history.pushState(null, '', path);
  route(message);
}

function route(message) {
  banner(message ?? '', message ? 'info' : 'error');
  const path = location.pathname.replace(/\/+$/, '');
  if (path === '/app/sign-in') {
    const params = new URLSearchParams(location.hash.slice(1));
    const t = params.get('token');
    if (t) return landing(t);
    return signInView();
  }
  if (token() === null) {
    forgetSession();
    history.replaceState(null, '', '/app/sign-in');
    return signInView();
  }
  if (path === '/app/credits') return creditsView();
  if (path !== '/app/keys') history.replaceState(null, '', '/app/keys');
  return keysView();
}

document.addEventListener('click', (e) => {
  const a = e.target.closest('a[href^="/app/"]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
  e.preventDefault();
  go(a.getAttribute('href'));
  $('main').focus();
});
window.addEventListener('popstate', () => route());

// ---------------------------------------------------------------- sign-in

function signInView() {
  show('sign-in');
  $('sign-in-form').hidden = false;
  $('sign-in-sent').hidden = true;
}

$('sign-in-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const email = $('sign-in-email').value.trim();
  if (!email.includes('@')) {
    banner('Enter the email address of your account, like ada@example.com.');
    $('sign-in-email').focus();
    return;
  }
  $('sign-in-submit').disabled = true;
  try {
    await api('POST', '/auth/email-link', { email });
    banner('');
    $('sign-in-sent-to').textContent = email;
    $('sign-in-form').hidden = true;
    $('sign-in-sent').hidden = false;
    $('sign-in-sent').focus?.();
  } catch (err) {
    showError(err);
  } finally {
    $('sign-in-submit').disabled = false;
  }
});

async function landing(oneTime) {
  // The token leaves the address bar (and the history entry) before anything else happens.
  history.replaceState(null, '', '/app/sign-in');
  show('landing');
  // A tab signed in to one account never switches to another without asking: a link someone
  // else sent (or planted) would otherwise sign this person in to that someone's account.
  const signedInAs = sessionEmail();
  try {
    const session = await api('POST', '/auth/session', { token: oneTime });
    if (signedInAs !== null && signedInAs !== session.email) {
      confirmSwitch(signedInAs, session);
      return;
    }
    keepSession(session);
    go('/app/keys');
  } catch (err) {
    signInView();
    if (err instanceof ApiError && err.status === 401) {
      banner('This sign-in link has expired or was already used. Ask for a new one below.');
    } else {
      showError(err);
    }
    $('sign-in-email').focus();
  }
}

/** "Sign in as <email>?": the new session is kept only if the person says so. */
function confirmSwitch(current, session) {
  show('switch');
  for (const id of ['switch-to', 'switch-to-button']) $(id).textContent = session.email;
  for (const id of ['switch-from', 'switch-from-button']) {
    $(id).textContent = current || 'your current account';
  }
  $('switch-yes').onclick = () => {
    keepSession(session);
    go('/app/keys');
  };
  $('switch-no').onclick = () => go('/app/keys');
  $('switch-no').focus();
}

$('sign-out').addEventListener('click', async () => {
  try {
    await api('POST', '/auth/sign-out');
  } catch {
    // Signing out locally still ends this tab's session.
  }
  forgetSession();
  go('/app/sign-in', 'You are signed out.');
});

// ---------------------------------------------------------------- API keys

const rows = new Map();

function fmtTime(iso) {
  if (!iso) return 'Never';
  return new Date(iso).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function fact(label, className) {
  const wrap = el('div');
  wrap.append(el('dt', '', label));
  const dd = el('dd', className);
  wrap.append(dd);
  return [wrap, dd];
}

function buildRow(key) {
  const li = el('li', 'key');
  li.dataset.id = key.id;
  const head = el('div', 'key-head');
  const name = el('h2', 'key-name');
  const status = el('span', 'status');
  head.append(name, status);
  const facts = el('dl', 'key-facts');
  const [fPreview, preview] = fact('Key', 'preview');
  const [fCreated, created] = fact('Created', 'created');
  const [fUsed, lastUsed] = fact('Last used', 'last-used');
  const [fCount, count] = fact('Requests', 'usage-count');
  facts.append(fPreview, fCreated, fUsed, fCount);
  const figure = el('figure', 'chart');
  const svg = createChart();
  figure.append(svg, el('figcaption', '', 'Requests per hour, last 24 hours'));
  const actions = el('div', 'key-actions');
  const rotate = el('button', 'rotate', 'Rotate');
  rotate.type = 'button';
  const revoke = el('button', 'revoke danger', 'Revoke');
  revoke.type = 'button';
  const events = el('button', 'events quiet', 'Show activity');
  events.type = 'button';
  events.setAttribute('aria-expanded', 'false');
  actions.append(rotate, revoke, events);
  const panel = el('div', 'events-panel');
  panel.hidden = true;
  panel.id = `events-${key.id}`;
  events.setAttribute('aria-controls', panel.id);
  li.append(head, facts, figure, actions, panel);

  const row = { li, name, status, preview, created, lastUsed, count, svg, rotate, revoke, events, panel, key };
  rotate.addEventListener('click', () => openRotate(row));
  revoke.addEventListener('click', () => openRevoke(row));
  events.addEventListener('click', () => toggleEvents(row));
  return row;
}

function fillRow(row, key) {
  row.key = key;
  row.name.textContent = key.name;
  const why = REVOCATION_TEXT[key.revocation_reason];
  row.status.textContent =
    key.status === 'expiring' ? `expiring ${fmtTime(key.revokes_at)}` : key.status === 'revoked' && why ? `revoked: ${why}` : key.status;
  row.status.className = `status status-${key.status}`;
  row.preview.textContent = key.preview;
  row.created.textContent = fmtTime(key.created_at);
  row.lastUsed.textContent = fmtTime(key.last_used_at);
  row.count.textContent = String(key.usage_count);
  const live = key.status !== 'revoked';
  row.rotate.hidden = !live;
  row.revoke.hidden = !live;
  row.li.classList.toggle('revoked', !live);
}

async function refreshKeys() {
  const page = await api('GET', '/keys?limit=100');
  const list = $('key-list');
  const seen = new Set();
  page.data.forEach((key, i) => {
    seen.add(key.id);
    let row = rows.get(key.id);
    if (!row) {
      row = buildRow(key);
      rows.set(key.id, row);
    }
    fillRow(row, key);
    if (list.children[i] !== row.li) list.insertBefore(row.li, list.children[i] ?? null);
  });
  for (const [id, row] of rows) {
    if (!seen.has(id)) {
      row.li.remove();
      rows.delete(id);
    }
  }
  $('keys-empty').hidden = page.data.length > 0;
  await Promise.all(
    page.data.map(async (key) => {
      const usage = await api('GET', `/keys/${encodeURIComponent(key.id)}/usage`);
      const row = rows.get(key.id);
      if (row) drawChart(row.svg, usage.hours);
    }),
  );
}

async function keysView() {
  show('keys');
  try {
    await refreshKeys();
  } catch (err) {
    showError(err);
  }
  // Usage counts, last use and the chart follow the API without a reload.
  pollTimer = setInterval(async () => {
    if (document.hidden || $('view-keys').hidden) return;
    try {
      await refreshKeys();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) showError(err);
    }
  }, POLL_MS);
}

// Create, then the one-time dialog.

$('create-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = $('new-key-name');
  const name = input.value.trim();
  if (!name) {
    banner('Give the key a name, so you can tell it apart later.');
    input.focus();
    return;
  }
  $('create-key').disabled = true;
  try {
    const created = await api('POST', '/keys', { name });
    banner('');
    input.value = '';
    showCreated(created, $('create-key'));
    refreshKeys().catch(showError);
  } catch (err) {
    showError(err);
  } finally {
    $('create-key').disabled = false;
  }
});

let returnFocus = null;

function showCreated(created, opener) {
  returnFocus = opener;
  $('created-key').textContent = created.key;
  $('copy-status').textContent = '';
  $('created-dialog').showModal();
  $('copy-key').focus();
}

$('copy-key').addEventListener('click', async () => {
  const text = $('created-key').textContent;
  try {
    await navigator.clipboard.writeText(text);
    $('copy-status').textContent = 'Copied to the clipboard.';
  } catch {
    const range = document.createRange();
    range.selectNodeContents($('created-key'));
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    $('copy-status').textContent = 'Selected: press Ctrl+C (or ⌘C) to copy.';
  }
});

/** Once closed, the key is gone from the page, and focus is back where the dialog came from. */
function createdClosed() {
  $('created-key').textContent = '';
  $('copy-status').textContent = '';
  (returnFocus ?? $('new-key-name')).focus();
}

$('close-created').addEventListener('click', () => {
  $('created-dialog').close();
  // At once: `close()` returns focus to the element focused before the dialog opened, and the
  // `close` event that corrects it comes a task later.
  createdClosed();
});
// Escape closes it too.
$('created-dialog').addEventListener('close', createdClosed);

// Revoke after a confirmation.

let pending = null;

function openRevoke(row) {
  pending = row;
  $('confirm-text').textContent =
    `"${row.key.name}" (${row.key.preview}) stops working at once, everywhere it is used. This cannot be undone.`;
  $('confirm-dialog').showModal();
  $('confirm-no').focus();
}

$('confirm-no').addEventListener('click', () => $('confirm-dialog').close());
$('confirm-yes').addEventListener('click', async () => {
  const row = pending;
  $('confirm-dialog').close();
  if (!row) return;
  try {
    await api('POST', `/keys/${encodeURIComponent(row.key.id)}/revoke`);
    banner(`"${row.key.name}" is revoked.`, 'info');
    await refreshKeys();
  } catch (err) {
    showError(err);
  }
});
$('confirm-dialog').addEventListener('close', () => {
  if (pending?.li.isConnected) (pending.revoke.hidden ? pending.events : pending.revoke).focus();
  pending = null;
});

// Rotate with a grace period.

function openRotate(row) {
  pending = row;
  $('rotate-text').textContent = `A new key replaces "${row.key.name}" (${row.key.preview}).`;
  $('rotate-name').value = `${row.key.name}-2`.slice(0, 100);
  $('rotate-grace').value = '0';
  $('rotate-dialog').showModal();
  $('rotate-name').focus();
}

$('rotate-no').addEventListener('click', () => $('rotate-dialog').close());
$('rotate-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const row = pending;
  const name = $('rotate-name').value.trim();
  const grace = Number.parseInt($('rotate-grace').value, 10);
  $('rotate-dialog').close();
  if (!row) return;
  try {
    const created = await api('POST', `/keys/${encodeURIComponent(row.key.id)}/rotate`, {
      name,
      grace_period_seconds: grace,
    });
    showCreated(created, $('new-key-name'));
    refreshKeys().catch(showError);
  } catch (err) {
    showError(err);
  }
});
$('rotate-dialog').addEventListener('close', () => {
  if (!$('created-dialog').open && pending?.li.isConnected) pending.rotate.focus();
});

// Each key's activity (audit trail).

const EVENT_TEXT = {
  created: 'Created',
  rotated: 'Rotated',
  revoked: 'Revoked',
  revocation_scheduled: 'Set to stop working later',
  high_usage_alert: 'High-usage email sent',
  leak_reported: 'Reported as leaked',
};
// `revocation_reason` of the key object (absent on servers that do not report it yet).
const REVOCATION_TEXT = {
  leaked: 'reported as leaked',
  operator: 'by JobTactics support',
};
const ACTOR_TEXT = {
  user: 'by you',
  operator: 'by JobTactics support',
  github_secret_scanning: 'by GitHub secret scanning',
  system: 'automatically',
};

function eventItem(ev) {
  const item = el('li');
  const what = EVENT_TEXT[ev.type] ?? ev.type;
  const who = ACTOR_TEXT[ev.actor] ?? '';
  item.append(el('span', 'when', fmtTime(ev.at)), ' ', el('span', '', `${what} ${who}`.trim()));
  if (ev.detail && typeof ev.detail.url === 'string') {
    item.append(' — ', el('span', 'muted', ev.detail.url));
  }
  return item;
}

/** Appends the page of events after `cursor` (the first page when null) to `list`. */
async function loadEvents(row, list, cursor) {
  const query = cursor ? `?starting_after=${encodeURIComponent(cursor)}` : '';
  const page = await api('GET', `/keys/${encodeURIComponent(row.key.id)}/events${query}`);
  for (const ev of page.data) list.append(eventItem(ev));
  row.panel.querySelector('button.more-events')?.remove();
  const last = page.data[page.data.length - 1];
  if (page.has_more && last && last.cursor) {
    const more = el('button', 'more-events quiet', 'Show older activity');
    more.type = 'button';
    more.addEventListener('click', () => loadEvents(row, list, last.cursor).catch(showError));
    row.panel.append(more);
  }
  return page.data.length;
}

async function toggleEvents(row) {
  const open = row.panel.hidden;
  row.panel.hidden = !open;
  row.events.setAttribute('aria-expanded', String(open));
  row.events.textContent = open ? 'Hide activity' : 'Show activity';
  if (!open) return;
  row.panel.replaceChildren(el('p', 'muted', 'Loading…'));
  try {
    const list = el('ol', 'events');
    const shown = await loadEvents(row, list, null);
    const more = row.panel.querySelector('button.more-events');
    row.panel.replaceChildren(shown ? list : el('p', 'muted', 'No activity recorded yet.'));
    if (more) row.panel.append(more);
  } catch (err) {
    // Until the server has the events endpoint, its 404 says "no such route" (not "no such key").
    if (err instanceof ApiError && err.status === 404 && /route/i.test(err.body?.error?.message ?? '')) {
      row.panel.replaceChildren(el('p', 'muted', 'The activity history is not available on this server yet.'));
    } else if (err instanceof ApiError && err.status === 404) {
      row.panel.replaceChildren(el('p', 'muted', 'The activity history is not available for this key.'));
    } else if (err instanceof ApiError && err.status === 401) {
      showError(err);
    } else {
      row.panel.replaceChildren(el('p', 'muted', sentence(err.status ?? 0, err.body ?? null, err.retryAfter ?? null)));
    }
  }
}

// ---------------------------------------------------------------- credits

/** The ledger's machine reason (`grant`, `template_purchase:<id>`, `document_render:<id>`) in words. */
function reasonText(reason) {
  const [kind, detail] = reason.split(/:(.*)/s);
  if (kind === 'grant') return 'Credits added';
  if (kind === 'template_purchase') return `Bought the template "${detail}"`;
  if (kind === 'document_render') return `Rendered a document (${detail})`;
  return reason;
}

function ledgerRow(entry) {
  const tr = el('tr');
  const change = entry.delta > 0 ? `+${entry.delta}` : String(entry.delta);
  tr.append(
    el('td', '', fmtTime(entry.created_at)),
    el('td', entry.delta < 0 ? 'debit' : 'credit', change),
    el('td', '', String(entry.balance_after)),
    el('td', '', reasonText(entry.reason)),
  );
  return tr;
}

async function loadLedger(append) {
  const query = ledgerCursor && append ? `?limit=20&starting_after=${encodeURIComponent(ledgerCursor)}` : '?limit=20';
  const page = await api('GET', `/credits/ledger${query}`);
  const body = $('ledger-rows');
  if (!append) body.replaceChildren();
  for (const entry of page.data) body.append(ledgerRow(entry));
  ledgerCursor = page.data.length ? page.data[page.data.length - 1].cursor : null;
  $('ledger-more').hidden = !page.has_more;
  $('ledger-empty').hidden = body.children.length > 0;
  $('ledger').hidden = body.children.length === 0;
}

async function creditsView() {
  show('credits');
  ledgerCursor = null;
  try {
    const [balance] = await Promise.all([api('GET', '/credits/balance'), loadLedger(false)]);
    $('balance').textContent = String(balance.balance);
  } catch (err) {
    showError(err);
  }
}

$('ledger-more').addEventListener('click', async () => {
  try {
    await loadLedger(true);
  } catch (err) {
    showError(err);
  }
});

route();
