// The one place the page talks to the API. The dashboard token lives in sessionStorage: it
// is sent only as an `Authorization` header this script adds, never as a cookie, so a request
// another site makes the browser send carries no credential (docs/dashboard.md).

const TOKEN = 'jt.dashboard.token';
const EXPIRES = 'jt.dashboard.expires_at';
const EMAIL = 'jt.dashboard.email';

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super(`HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.retryAfter = retryAfter;
  }
}

export function token() {
  const t = sessionStorage.getItem(TOKEN);
  const exp = Date.parse(sessionStorage.getItem(EXPIRES) ?? '');
  if (!t || !(exp > Date.now())) return null;
  return t;
}

export function keepSession(session) {
  sessionStorage.setItem(TOKEN, session.token);
  sessionStorage.setItem(EXPIRES, session.expires_at);
  if (session.email) sessionStorage.setItem(EMAIL, session.email);
  else sessionStorage.removeItem(EMAIL);
}

/** The signed-in account's address, when this tab has a session ('' if it is not known). */
export function sessionEmail() {
  if (token() === null) return null;
  return sessionStorage.getItem(EMAIL) ?? '';
}

export function forgetSession() {
  sessionStorage.removeItem(TOKEN);
  sessionStorage.removeItem(EXPIRES);
  sessionStorage.removeItem(EMAIL);
}

/** `method` `/api/v1{path}` with an optional JSON body; resolves to the parsed body (null for 204). */
export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, null, null);
  }
  if (res.status === 202 || res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) throw new ApiError(res.status, data, res.headers.get('Retry-After'));
  return data;
}
