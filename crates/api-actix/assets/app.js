// The dashboard: sign-in, "API keys" and "Credits". Plain ES modules, no build step
// (docs/dashboard.md). Everything user-supplied is written with textContent, never as HTML.

import { api, ApiError, forgetSession, keepSession, sessionEmail, token } from './api.js';
import { fieldError, sentence, setTopUpUrl } from './errors.js';
import { createChart, drawChart } from './chart.js';

const POLL_MS = 3000;
const $ = (id) => document.getElementById(id);
const views = ['sign-in', 'landing', 'switch', 'keys', 'credits'];

let pollTimer = null;
let ledgerCursor = null;

// The service fills in the top-up link (JT_TOP_UP_URL); the 402 sentence names it too.
setTopUpUrl($('top-up').getAttribute('href'));

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
  // After a rotation with a grace period: who still uses this (old) key.
  const rotation = el('section', 'after-rotation');
  rotation.hidden = true;
  const rotationTitle = el('h3', '', 'Since the rotation');
  rotationTitle.id = `rotation-${key.id}`;
  rotation.setAttribute('aria-labelledby', rotationTitle.id);
  const rotationSummary = el('p', 'rotation-summary');
  const rotationLastUsed = el('p', 'rotation-last-used');
  const rotationClients = el('div', 'rotation-clients');
  const quietFor = el('p', 'quiet-for');
  quietFor.hidden = true;
  const revokeNow = el('button', 'revoke-now danger', 'Revoke now');
  revokeNow.type = 'button';
  rotation.append(rotationTitle, rotationSummary, rotationLastUsed, rotationClients, quietFor, revokeNow);
  // Where the key is used: read when opened, and again at each refresh while open.
  const clients = el('details', 'clients');
  const clientsBody = el('div', 'clients-body');
  clients.append(el('summary', '', 'Used from'), clientsBody);
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
  li.append(head, facts, controls, rotation, figure, clients, actions, panel);

  const row = {
    li, name, status, preview, created, lastUsed, count, expires, networks, scopes, limit, svg,
    edit, rotate, revoke, events, panel, key, spent: null,
    rotation, rotationSummary, rotationLastUsed, rotationClients, quietFor, revokeNow, clients, clientsBody,
    // The `at` of the key's latest `rotated` event (undefined until read, null when it has none).
    rotatedAt: undefined,
  };
  edit.addEventListener('click', () => openControls(row));
  rotate.addEventListener('click', () => openRotate(row));
  revoke.addEventListener('click', () => openRevoke(row, revoke));
  revokeNow.addEventListener('click', () => openRevoke(row, revokeNow));
  events.addEventListener('click', () => toggleEvents(row));
  clients.addEventListener('toggle', () => {
    if (!clients.open) return;
    if (!clientsBody.hasChildNodes()) clientsBody.append(el('p', 'muted', 'Loading…'));
    refreshClients(row).catch(showError);
  });
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
  if (key.status !== 'expiring') row.rotation.hidden = true;
}

/** The key's controls on its card (docs/api.md, "Key controls"); `null` is "no control". */
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
      const row = rows.get(key.id);
      // The list does not carry `spent_this_month`: a key with a limit is read on its own.
      // Clients only for the cards that show them (open "Used from", or an expiring key).
      const [usage, full] = await Promise.all([
        api('GET', `${path}/usage`),
        typeof key.monthly_credit_limit === 'number' ? api('GET', path) : null,
        row ? refreshClients(row) : null,
      ]);
      if (!rows.has(key.id)) return;
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
// The button that opened the confirmation ("Revoke", or "Revoke now" of an expiring key).
let revokeOpener = null;

function openRevoke(row, opener) {
  pending = row;
  revokeOpener = opener;
  const { key } = row;
  const when = key.status === 'expiring' ? ` instead of ${fmtTime(key.revokes_at)}` : '';
  $('confirm-text').textContent =
    `"${key.name}" (${key.preview}) stops working at once${when}, everywhere it is used. This cannot be undone.`;
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
    // The revoked card has no revoke buttons left: focus stays on the card.
    const at = document.activeElement;
    if (row.li.isConnected && (at === document.body || (row.li.contains(at) && at.closest('[hidden]')))) {
      row.events.focus();
    }
  } catch (err) {
    showError(err);
  }
});
$('confirm-dialog').addEventListener('close', () => {
  if (pending?.li.isConnected) {
    const back = revokeOpener && !revokeOpener.closest('[hidden]') ? revokeOpener : pending.events;
    back.focus();
  }
  pending = null;
  revokeOpener = null;
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

// Key controls (docs/api.md, "Key controls"): the create form and the "Edit controls" dialog share
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

// Where each key is used (docs/signals.md): its clients, read for the cards that show
// them only (an open "Used from", or an expiring key), so a long list costs nothing extra.

/** After this long without a request, an expiring key says that nobody uses it any more. */
const QUIET_AFTER_MS = 10 * 60e3;

function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** "just now", "5 minutes ago", "3 hours ago", else the date and time. */
function ago(iso) {
  const ms = Date.now() - Date.parse(iso);
  if (!Number.isFinite(ms)) return 'at an unknown time';
  const minutes = Math.floor(ms / 60e3);
  if (minutes < 1) return 'just now';
  if (minutes < 60) return `${plural(minutes, 'minute')} ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${plural(hours, 'hour')} ago`;
  return `on ${fmtTime(iso)}`;
}

/** A `<time>` saying how long ago `iso` was, the exact time as its tooltip. */
function timeAgo(iso) {
  const t = el('time', '', ago(iso));
  t.dateTime = iso;
  t.title = fmtTime(iso);
  return t;
}

/** A duration in words: minutes up to two hours, then hours up to two days, then days. */
function duration(ms) {
  const minutes = Math.floor(ms / 60e3);
  if (minutes < 120) return plural(minutes, 'minute');
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return plural(hours, 'hour');
  return plural(Math.floor(hours / 24), 'day');
}

const agentText = (ua) => (ua === '-' || !ua ? 'no user agent' : ua);

// What each box of a card shows, as a signature: a refresh that changes nothing leaves the
// nodes alone, so the list (an aria-live region) does not re-announce them every 3 seconds.
const shown = new WeakMap();

function render(box, sig, build) {
  if (shown.get(box) === sig) return;
  shown.set(box, sig);
  box.replaceChildren(...build());
}

const clientSig = (clients) =>
  JSON.stringify(clients.map((c) => [c.network, c.user_agent, c.requests, c.browser, ago(c.last_seen)]));

function clientItem(c) {
  const item = el('li', c.browser ? 'client browser' : 'client');
  const who = el('span', 'client-who');
  who.append(el('code', 'network', c.network), ' ', el('span', c.user_agent === '-' ? 'agent none' : 'agent', agentText(c.user_agent)));
  if (c.browser) who.append(' ', el('span', 'badge', 'browser'));
  const seen = el('span', 'client-seen');
  seen.append('Last seen ', timeAgo(c.last_seen), `, ${plural(c.requests, 'request')}`);
  item.append(who, seen);
  return item;
}

/** The clients as a list, most recently seen first, with the warning when a browser is one. */
function clientParts(clients) {
  const list = el('ul', 'client-list');
  for (const c of clients) list.append(clientItem(c));
  if (!clients.some((c) => c.browser)) return [list];
  const warning = el(
    'p',
    'browser-warning',
    'Used from a web browser (marked “browser”). API keys are for server-side use only: anyone who opens ' +
      'a page that holds the key can read it. Call the API from your server instead, and rotate this key.',
  );
  return [warning, list];
}

function showClients(row, page) {
  render(row.clientsBody, `${clientSig(page.data)} ${page.has_more}`, () => {
    if (!page.data.length) return [el('p', 'muted clients-empty', 'Not used yet.')];
    const parts = clientParts(page.data);
    if (page.has_more) parts.push(el('p', 'muted', `The ${page.data.length} most recently seen are shown.`));
    return parts;
  });
}

/** The `at` of the key's latest `rotated` event into `row.rotatedAt` (null when it has none). */
async function readRotation(row) {
  let cursor = null;
  for (let pages = 0; pages < 10; pages += 1) {
    const after = cursor ? `&starting_after=${encodeURIComponent(cursor)}` : '';
    const page = await api('GET', `/keys/${encodeURIComponent(row.key.id)}/events?limit=100${after}`);
    const rotated = page.data.find((ev) => ev.type === 'rotated');
    if (rotated) {
      row.rotatedAt = rotated.at;
      return;
    }
    const last = page.data[page.data.length - 1];
    if (!page.has_more || !last?.cursor) break;
    cursor = last.cursor;
  }
  row.rotatedAt = null;
}

/**
 * An expiring key after its rotation: who used it since, when it was last used, "Revoke now",
 * and once nothing has used it for 10 minutes (since its last use, or since the rotation when
 * it was not used after it), that nothing does.
 */
function showRotation(row, clients) {
  const { key } = row;
  const rotated = row.rotatedAt ? Date.parse(row.rotatedAt) : null;
  const used = key.last_used_at ? Date.parse(key.last_used_at) : null;
  const until = `It keeps working until ${fmtTime(key.revokes_at)} for whatever has not moved to the new key yet.`;
  const summary = rotated === null ? until : `Rotated ${fmtTime(row.rotatedAt)}. ${until}`;
  render(row.rotationSummary, summary, () => [summary]);
  if (used === null) {
    render(row.rotationLastUsed, 'never', () => ['Never used.']);
  } else {
    const before = rotated !== null && used <= rotated ? ', before the rotation.' : '.';
    const when = key.last_used_at;
    render(row.rotationLastUsed, `${when} ${ago(when)}${before}`, () => ['Last used ', timeAgo(when), before]);
  }
  const since = rotated === null ? null : clients.filter((c) => Date.parse(c.last_seen) > rotated);
  render(row.rotationClients, since === null ? '' : clientSig(since), () => {
    if (since === null) return [];
    if (!since.length) return [el('p', 'muted none-since', 'Nothing has used it since the rotation.')];
    return [el('p', 'since-title', 'Used since the rotation by:'), ...clientParts(since)];
  });
  const quietSince = used !== null && (rotated === null || used > rotated) ? used : rotated;
  const quiet = quietSince === null ? 0 : Date.now() - quietSince;
  const quietText =
    quiet >= QUIET_AFTER_MS
      ? `No consumer has used this key for ${duration(quiet)}. If everything that used it has moved to the new key, revoke it now.`
      : '';
  render(row.quietFor, quietText, () => [quietText]);
  row.quietFor.hidden = !quietText;
  row.rotation.hidden = false;
}

function clientsUnavailable(row, err) {
  let text;
  if (err instanceof ApiError && err.status === 404 && /route/i.test(err.body?.error?.message ?? '')) {
    text = 'Where keys are used is not available on this server yet.';
  } else if (err instanceof ApiError && err.status === 404) {
    text = 'Where this key is used is not available.';
  } else {
    text = sentence(err.status ?? 0, err.body ?? null, err.retryAfter ?? null);
  }
  // A list already shown stays until a later read succeeds.
  if (row.clients.open && !row.clientsBody.querySelector('ul')) render(row.clientsBody, `error ${text}`, () => [el('p', 'muted', text)]);
}

/** Re-reads the key's clients when its card shows them; a 401 is the caller's to handle. */
async function refreshClients(row) {
  const expiring = row.key.status === 'expiring';
  if (!row.clients.open && !expiring) return;
  let page;
  try {
    [page] = await Promise.all([
      api('GET', `/keys/${encodeURIComponent(row.key.id)}/clients?limit=100`),
      expiring && row.rotatedAt === undefined ? readRotation(row) : null,
    ]);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) throw err;
    clientsUnavailable(row, err);
    return;
  }
  if (row.clients.open) showClients(row, page);
  if (row.key.status === 'expiring') showRotation(row, page.data);
}

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

/** What a signal or a rotation's event adds: the network and user agent, the counts, the date. */
function eventDetail(ev) {
  const d = ev.detail ?? {};
  const where = typeof d.network === 'string' ? `${d.network}, ${agentText(d.user_agent)}` : '';
  switch (ev.type) {
    case 'new_network': {
      const before = Number.isInteger(d.networks_before)
        ? `; ${plural(d.networks_before, 'other network')} in the 30 days before`
        : '';
      return where && where + before;
    }
    case 'browser_use': {
      const n = Number.isInteger(d.requests) ? `, ${plural(d.requests, 'request')}` : '';
      return where && `${where}${n}. Keys are for server-side use only.`;
    }
    case 'usage_spike': {
      if (!Number.isInteger(d.count)) return '';
      const before = Number.isInteger(d.busiest_hour_before)
        ? `; the busiest hour of the 7 days before had ${plural(d.busiest_hour_before, 'request')}`
        : '';
      return `${plural(d.count, 'request')} this hour${before}`;
    }
    case 'revocation_scheduled':
      return typeof d.revokes_at === 'string' ? `stops working ${fmtTime(d.revokes_at)}` : '';
    case 'rotated': {
      const next = rows.get(d.replaced_by)?.key.name;
      return next ? `replaced by "${next}"` : '';
    }
    default:
      return '';
  }
}

function eventItem(ev) {
  const item = el('li');
  item.append(el('span', 'when', fmtTime(ev.at)), ' ', el('span', 'what', eventText(ev)));
  const detail = ev.detail ?? {};
  const extra =
    typeof detail.url === 'string' ? detail.url : ev.type === 'updated' ? changedValues(detail) : eventDetail(ev);
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
