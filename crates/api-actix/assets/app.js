// The dashboard: sign-in, "API keys" and "Credits". Plain ES modules, no build step
// (docs/dashboard.md). Everything user-supplied is written with textContent, never as HTML.

import { api, ApiError, forgetSession, keepSession, sessionEmail, token } from './api.js';
import { fieldError, sentence } from './errors.js';
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

/** An expiry in UTC, as the date fields choose it (the end of a UTC day). */
function fmtUtc(iso) {
  if (!iso) return 'Never';
  const at = new Date(iso).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' });
  return `${at} UTC`;
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
  const controls = el('dl', 'key-facts key-controls');
  const [fExpires, expires] = fact('Expires', 'expires-at');
  const [fNetworks, networks] = fact('Allowed networks', 'networks');
  const [fScopes, scopes] = fact('Scopes', 'scopes');
  const [fLimit, limit] = fact('Monthly credit limit', 'credit-limit');
  controls.append(fExpires, fNetworks, fScopes, fLimit);
  const figure = el('figure', 'chart');
  const svg = createChart();
  figure.append(svg, el('figcaption', '', 'Requests per hour, last 24 hours'));
  const actions = el('div', 'key-actions');
  const edit = el('button', 'edit-controls quiet', 'Edit controls');
  edit.type = 'button';
  const rotate = el('button', 'rotate', 'Rotate');
  rotate.type = 'button';
  const revoke = el('button', 'revoke danger', 'Revoke');
  revoke.type = 'button';
  const events = el('button', 'events quiet', 'Show activity');
  events.type = 'button';
  events.setAttribute('aria-expanded', 'false');
  actions.append(edit, rotate, revoke, events);
  const panel = el('div', 'events-panel');
  panel.hidden = true;
  panel.id = `events-${key.id}`;
  events.setAttribute('aria-controls', panel.id);
  li.append(head, facts, controls, figure, actions, panel);

  const row = {
    li, name, status, preview, created, lastUsed, count, expires, networks, scopes, limit, svg,
    edit, rotate, revoke, events, panel, key, spent: null,
  };
  edit.addEventListener('click', () => openControls(row));
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
  fillControls(row, key);
  // Revoked and expired keys are final: nothing to rotate, revoke or narrow any more.
  const live = key.status !== 'revoked' && key.status !== 'expired';
  row.edit.hidden = !live;
  row.rotate.hidden = !live;
  row.revoke.hidden = !live;
  row.li.classList.toggle('revoked', key.status === 'revoked');
  row.li.classList.toggle('expired', key.status === 'expired');
}

/** The key's controls on its card (contract section 11); `null` is "no control". */
function fillControls(row, key) {
  if (typeof key.spent_this_month === 'number') row.spent = key.spent_this_month;
  row.expires.textContent = fmtUtc(key.expires_at);
  const nets = key.allowed_networks;
  row.networks.textContent = Array.isArray(nets) && nets.length ? nets.join(', ') : 'Any';
  row.scopes.textContent = scopesText(key.scopes);
  const limit = key.monthly_credit_limit;
  if (typeof limit !== 'number') {
    row.limit.textContent = 'None';
  } else if (row.spent !== null) {
    row.limit.textContent = `${row.spent} of ${limit} credits this month`;
  } else {
    row.limit.textContent = `${limit} credits a month`;
  }
}

function scopesText(scopes) {
  if (!Array.isArray(scopes)) return 'All';
  if (SCOPES.every((s) => scopes.includes(s))) return 'All';
  return scopes.length ? scopes.join(', ') : 'None';
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
      const path = `/keys/${encodeURIComponent(key.id)}`;
      // The list does not carry `spent_this_month`: a key with a limit is read on its own.
      const [usage, full] = await Promise.all([
        api('GET', `${path}/usage`),
        typeof key.monthly_credit_limit === 'number' ? api('GET', path) : null,
      ]);
      const row = rows.get(key.id);
      if (!row) return;
      drawChart(row.svg, usage.hours);
      if (full) fillRow(row, full);
    }),
  );
}

async function keysView() {
  show('keys');
  setDateRange('new-key');
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
  clearFieldErrors('new-key');
  const input = $('new-key-name');
  const name = input.value.trim();
  if (!name) {
    showFieldError('new-key', 'name', 'Give the key a name, so you can tell it apart later.');
    return;
  }
  const controls = readControls('new-key');
  if (!controls) return;
  // Only the controls that narrow something: absent is "none" (and all four scopes).
  const body = { name };
  for (const field of ['expires_at', 'allowed_networks', 'monthly_credit_limit']) {
    if (controls[field] !== null) body[field] = controls[field];
  }
  if (controls.scopes.length !== SCOPES.length) body.scopes = controls.scopes;
  $('create-key').disabled = true;
  try {
    const created = await api('POST', '/keys', body);
    banner('');
    input.value = '';
    resetControls('new-key');
    showCreated(created, $('create-key'));
    refreshKeys().catch(showError);
  } catch (err) {
    const wrong = err instanceof ApiError ? fieldError(err.status, err.body) : null;
    if (wrong && showFieldError('new-key', wrong.field, wrong.text)) banner('');
    else showError(err);
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

// Key controls (contract section 11): the create form and the "Edit controls" dialog share
// the field layout; `prefix` is `new-key` or `edit`.

const SCOPES = ['credits:read', 'documents:read', 'documents:write', 'templates:purchase'];
// The API's field names → the ids of the form's inputs (`${prefix}-${id}`) and their messages
// (`${prefix}-${id}-error`).
const CONTROL_IDS = {
  name: 'name',
  expires_at: 'expiry',
  allowed_networks: 'networks',
  monthly_credit_limit: 'limit',
  scopes: 'scopes',
};

const controlEl = (prefix, field) => $(`${prefix}-${CONTROL_IDS[field]}`);
const scopeBoxes = (prefix) => [...controlEl(prefix, 'scopes').querySelectorAll('input[name="scope"]')];

/** The UTC calendar date `days` days from today, as a date input writes it (YYYY-MM-DD). */
function utcDate(days) {
  return new Date(Date.now() + days * 86400e3).toISOString().slice(0, 10);
}

/** The date input's day as `expires_at`: the key works until the end of that day, UTC. */
function endOfDay(date) {
  return `${date}T23:59:59Z`;
}

/** The UTC day of an `expires_at`, for the date input ('' when none). */
function dayOf(iso) {
  if (!iso) return '';
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? '' : at.toISOString().slice(0, 10);
}

/** Today to 365 days ahead (UTC): the end of any of those days is 60 s to 366 days away. */
function setDateRange(prefix) {
  const input = controlEl(prefix, 'expires_at');
  input.min = utcDate(0);
  input.max = utcDate(365);
}

function networkLines(text) {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '');
}

/** What the form's fields hold, as text, to tell which ones the person changed. */
function formState(prefix) {
  return {
    expires_at: controlEl(prefix, 'expires_at').value,
    allowed_networks: networkLines(controlEl(prefix, 'allowed_networks').value).join('\n'),
    monthly_credit_limit: controlEl(prefix, 'monthly_credit_limit').value.trim(),
    scopes: scopeBoxes(prefix)
      .filter((c) => c.checked)
      .map((c) => c.value)
      .join(','),
  };
}

/**
 * The form's controls as the API takes them (`null` = no such control), or null after showing
 * why a field cannot be read. The rest is the server's to judge: its 400 names the field.
 */
function readControls(prefix) {
  const limit = controlEl(prefix, 'monthly_credit_limit');
  if (limit.validity.badInput) {
    showFieldError(
      prefix,
      'monthly_credit_limit',
      'The monthly credit limit must be a whole number of credits. Leave it empty for no limit.',
    );
    return null;
  }
  const day = controlEl(prefix, 'expires_at').value;
  const networks = networkLines(controlEl(prefix, 'allowed_networks').value);
  const credits = limit.value.trim();
  return {
    expires_at: day ? endOfDay(day) : null,
    allowed_networks: networks.length ? networks : null,
    // A number when it is one; otherwise as typed, and the server says what is wrong with it.
    monthly_credit_limit: credits === '' ? null : Number.isFinite(Number(credits)) ? Number(credits) : credits,
    scopes: scopeBoxes(prefix)
      .filter((c) => c.checked)
      .map((c) => c.value),
  };
}

function resetControls(prefix) {
  controlEl(prefix, 'expires_at').value = '';
  controlEl(prefix, 'allowed_networks').value = '';
  controlEl(prefix, 'monthly_credit_limit').value = '';
  for (const box of scopeBoxes(prefix)) box.checked = true;
  setDateRange(prefix);
}

function clearFieldErrors(prefix) {
  for (const field of Object.keys(CONTROL_IDS)) {
    const message = $(`${prefix}-${CONTROL_IDS[field]}-error`);
    if (!message) continue;
    message.textContent = '';
    message.hidden = true;
    controlEl(prefix, field).removeAttribute('aria-invalid');
  }
}

/** `text` next to `field` of the form, which takes the focus; false when the form has no such field. */
function showFieldError(prefix, field, text) {
  const message = CONTROL_IDS[field] ? $(`${prefix}-${CONTROL_IDS[field]}-error`) : null;
  if (!message) return false;
  message.textContent = text;
  message.hidden = false;
  if (prefix === 'new-key' && field !== 'name') $('new-key-controls').open = true;
  if (field === 'scopes') {
    scopeBoxes(prefix)[0].focus();
  } else {
    const input = controlEl(prefix, field);
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  }
  return true;
}

// "Edit controls": prefilled with the key's controls; saving sends only what changed.

let editing = null;

function controlsFormError(text) {
  $('controls-error').textContent = text;
  $('controls-error').hidden = !text;
}

function openControls(row) {
  const key = row.key;
  clearFieldErrors('edit');
  controlsFormError('');
  $('controls-title').textContent = `Edit the controls of "${key.name}"`;
  $('controls-text').textContent = `Changes to ${key.preview} apply wherever the key is used within a second.`;
  setDateRange('edit');
  controlEl('edit', 'expires_at').value = dayOf(key.expires_at);
  controlEl('edit', 'allowed_networks').value = (key.allowed_networks ?? []).join('\n');
  controlEl('edit', 'monthly_credit_limit').value =
    typeof key.monthly_credit_limit === 'number' ? String(key.monthly_credit_limit) : '';
  const scopes = Array.isArray(key.scopes) ? key.scopes : SCOPES;
  for (const box of scopeBoxes('edit')) box.checked = scopes.includes(box.value);
  editing = { row, before: formState('edit') };
  $('controls-dialog').showModal();
  controlEl('edit', 'expires_at').focus();
}

$('controls-cancel').addEventListener('click', () => $('controls-dialog').close());
$('controls-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const current = editing;
  if (!current) return;
  clearFieldErrors('edit');
  controlsFormError('');
  const controls = readControls('edit');
  if (!controls) return;
  const now = formState('edit');
  const patch = {};
  for (const field of Object.keys(now)) {
    if (now[field] !== current.before[field]) patch[field] = controls[field];
  }
  const { key } = current.row;
  if (Object.keys(patch).length === 0) {
    $('controls-dialog').close();
    banner(`Nothing was changed: the controls of "${key.name}" are as they were.`, 'info');
    return;
  }
  $('controls-save').disabled = true;
  try {
    const updated = await api('PATCH', `/keys/${encodeURIComponent(key.id)}`, patch);
    $('controls-dialog').close();
    banner(`The controls of "${updated.name}" are saved.`, 'info');
    fillRow(current.row, updated);
    refreshKeys().catch(showError);
  } catch (err) {
    const wrong = err instanceof ApiError ? fieldError(err.status, err.body) : null;
    if (wrong && showFieldError('edit', wrong.field, wrong.text)) return;
    if (err instanceof ApiError && [401, 404, 409].includes(err.status)) {
      // Signed out, or the key is gone, revoked or expired meanwhile: nothing left to edit here.
      $('controls-dialog').close();
      showError(err);
      refreshKeys().catch(() => {});
      return;
    }
    controlsFormError(sentence(err.status ?? 0, err.body ?? null, err.retryAfter ?? null));
  } finally {
    $('controls-save').disabled = false;
  }
});
$('controls-dialog').addEventListener('close', () => {
  const row = editing?.row;
  editing = null;
  if (row?.li.isConnected) (row.edit.hidden ? row.events : row.edit).focus();
});

// Each key's activity (audit trail).

const EVENT_TEXT = {
  created: 'Created',
  rotated: 'Rotated',
  revoked: 'Revoked',
  revocation_scheduled: 'Set to stop working later',
  high_usage_alert: 'High-usage email sent',
  leak_reported: 'Reported as leaked',
  updated: 'Controls changed',
  expiry_reminder: 'Expiry reminder sent',
  new_network: 'Used from a new network',
  browser_use: 'Used from a web browser',
  usage_spike: 'Unusual spike in use',
};
// Events the service records on its own: "automatically" would add nothing.
const SIGNAL_EVENTS = new Set(['expiry_reminder', 'new_network', 'browser_use', 'usage_spike']);
// The fields an `updated` event names (`detail.changed`), in words.
const CHANGED_TEXT = {
  name: 'name',
  expires_at: 'expiry',
  allowed_networks: 'allowed networks',
  monthly_credit_limit: 'monthly credit limit',
  scopes: 'scopes',
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

/** An event in words: "Controls changed by you: scopes, expiry". */
function eventText(ev) {
  const detail = ev.detail ?? {};
  const who = SIGNAL_EVENTS.has(ev.type) ? '' : (ACTOR_TEXT[ev.actor] ?? '');
  let what = `${EVENT_TEXT[ev.type] ?? ev.type} ${who}`.trim();
  if (ev.type === 'updated' && Array.isArray(detail.changed) && detail.changed.length) {
    what += `: ${detail.changed.map((f) => CHANGED_TEXT[f] ?? f).join(', ')}`;
  }
  if (ev.type === 'expiry_reminder' && Number.isInteger(detail.days_before)) {
    const n = detail.days_before;
    what += ` (${n} day${n === 1 ? '' : 's'} before)`;
  }
  return what;
}

/** What an `updated` event set each field to: "monthly credit limit removed; scopes: …". */
function changedValues(detail) {
  if (!Array.isArray(detail.changed)) return '';
  return detail.changed
    .filter((f) => f in detail)
    .map((f) => {
      const label = CHANGED_TEXT[f] ?? f;
      const value = detail[f];
      if (value === null) return `${label} removed`;
      if (f === 'expires_at') return `${label}: ${fmtUtc(value)}`;
      if (f === 'scopes' && value === '') return `${label}: none`;
      if (f === 'scopes' || f === 'allowed_networks') return `${label}: ${String(value).split(',').join(', ')}`;
      return `${label}: ${String(value)}`;
    })
    .join('; ');
}

function eventItem(ev) {
  const item = el('li');
  item.append(el('span', 'when', fmtTime(ev.at)), ' ', el('span', 'what', eventText(ev)));
  const detail = ev.detail ?? {};
  const extra = typeof detail.url === 'string' ? detail.url : ev.type === 'updated' ? changedValues(detail) : '';
  if (extra) item.append(' — ', el('span', 'muted', extra));
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
