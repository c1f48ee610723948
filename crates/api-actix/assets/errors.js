// Turns an API answer into a sentence a person understands. Never shows raw JSON: the API's
// own `message` is a short English clause and is used only for the statuses where it says
// what to fix (400, 409).

// Where to buy credits: the service's JT_TOP_UP_URL. A 402 names it; the page carries it too
// (its "Buy more credits" link), and app.js passes that here.
let topUpUrl = null;

/** @param {string|null} url */
export function setTopUpUrl(url) {
  topUpUrl = typeof url === 'string' && url !== '' ? url : null;
}

function clause(message) {
  if (typeof message !== 'string' || message.trim() === '') return null;
  const m = message.trim();
  return m.charAt(0).toUpperCase() + m.slice(1) + (/[.!?]$/.test(m) ? '' : '.');
}

function seconds(retryAfter) {
  const n = Number.parseInt(retryAfter ?? '', 10);
  return Number.isFinite(n) && n > 0 ? n : null;
}

/**
 * @param {number} status HTTP status; 0 when the request never got an answer.
 * @param {any} body the parsed error body, or null.
 * @param {string|null} retryAfter the `Retry-After` header.
 * @returns {string}
 */
export function sentence(status, body, retryAfter) {
  const message = body && body.error ? body.error.message : null;
  switch (status) {
    case 0:
      return 'JobTactics cannot be reached. Check your connection and try again.';
    case 400:
      return clause(message) ?? 'Something in the form is not right. Check it and try again.';
    case 401:
      return 'Your session has ended. Sign in again to continue.';
    case 402: {
      const named = body && body.error && typeof body.error.top_up_url === 'string' ? body.error.top_up_url : null;
      const url = named ?? topUpUrl;
      return url
        ? `You do not have enough credits for this. Buy more at ${url} and try again.`
        : 'You do not have enough credits for this. Buy more on the Credits page and try again.';
    }
    case 403:
      return 'You do not have access to this.';
    case 404:
      return 'This no longer exists. The page has been refreshed.';
    case 409:
      return (clause(message) ?? 'This conflicts with the current state of your keys.') + ' Nothing was changed.';
    case 413:
      return 'That is too long. Shorten it and try again.';
    case 429: {
      const s = seconds(retryAfter);
      return s
        ? `Too many requests right now. Wait ${s} second${s === 1 ? '' : 's'} and try again.`
        : 'Too many requests right now. Wait a moment and try again.';
    }
    case 503:
      return 'JobTactics is briefly unavailable. Nothing was lost; try again in a moment.';
    default:
      return status >= 500
        ? 'Something went wrong on our side. Try again in a moment.'
        : 'That did not work. Try again.';
  }
}

// The API's field names as the dashboard's forms call them (its messages start with the name).
const FIELD_WORDS = {
  name: 'The name',
  expires_at: 'The expiry date',
  allowed_networks: 'Allowed networks',
  monthly_credit_limit: 'The monthly credit limit',
  scopes: 'Scopes',
};

/**
 * A 400 that names the field at fault, as `{field, text}`: the API's message as a sentence,
 * with the wire's field name in the form's words. Null for any other answer.
 * @param {number} status
 * @param {any} body
 * @returns {{field: string, text: string} | null}
 */
export function fieldError(status, body) {
  const error = body && body.error;
  if (status !== 400 || !error || typeof error.field !== 'string') return null;
  let m = typeof error.message === 'string' ? error.message.trim() : '';
  const words = FIELD_WORDS[error.field];
  if (words && m.startsWith(error.field)) m = words + m.slice(error.field.length);
  m = m.replace('(use null for no restriction)', '(leave the field empty for no restriction)');
  const text = clause(m);
  return text ? { field: error.field, text } : null;
}
