// The only module that talks to the server. The bearer token lives in sessionStorage (a tab's
// lifetime); the client secret is never stored anywhere.

const TOKEN = 'labelloop.token';
const EXPIRES = 'labelloop.tokenExpires';

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

let unauthorized = () => {};

/** Called once with what to do when the token is missing, bad or expired. */
export function onUnauthorized(fn) {
  unauthorized = fn;
}

export const session = {
  token() {
    const expires = Number(sessionStorage.getItem(EXPIRES) || 0);
    // Treat a token as dead a little early, so that it never dies between here and the server.
    if (expires && Date.now() > expires - 10_000) return null;
    return sessionStorage.getItem(TOKEN);
  },
  hasToken: () => sessionStorage.getItem(TOKEN) !== null,
  clear() {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(EXPIRES);
  },
};

export async function signIn(clientId, clientSecret) {
  const form = new URLSearchParams({
    grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret,
  });
  const res = await fetch('/connect/token', { method: 'POST', body: form });
  const data = await readBody(res);
  if (!res.ok) throw new ApiError(res.status, messageOf(res, data), data);
  sessionStorage.setItem(TOKEN, data.access_token);
  if (data.expires_in) sessionStorage.setItem(EXPIRES, String(Date.now() + data.expires_in * 1000));
  return data;
}

async function readBody(res) {
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function messageOf(res, data) {
  if (data && typeof data === 'object' && data.message) return data.message;
  return `${res.status} ${res.statusText || 'error'}`.trim();
}

function url(path, query) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  }
  const qs = params.toString();
  return qs ? `${path}${path.includes('?') ? '&' : '?'}${qs}` : path;
}

/** The root-relative URL of `Link: <…>; rel="next"`, or null. */
export function nextLink(header) {
  const m = /<([^>]*)>\s*;\s*rel="?next"?/.exec(header || '');
  return m ? m[1] : null;
}

// Marks an error the sign-in page already explains, so that no banner repeats it.
function sessionEnded(err) {
  err.sessionEnded = true;
  return err;
}

/** One request; resolves to {data, next}. A 401 clears the session and throws. */
export async function request(method, path, { body, query, keepalive } = {}) {
  const token = session.token();
  if (!token) {
    const expired = session.hasToken();
    session.clear();
    unauthorized(expired);
    throw sessionEnded(new ApiError(401, 'not signed in'));
  }
  const headers = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(url(path, query), {
    method, headers, keepalive, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await readBody(res);
  if (res.status === 401) {
    session.clear();
    unauthorized(true);
    throw sessionEnded(new ApiError(401, messageOf(res, data), data));
  }
  if (!res.ok) throw new ApiError(res.status, messageOf(res, data), data);
  return { data, next: nextLink(res.headers.get('Link')) };
}

export const get = async (path, query) => (await request('GET', path, { query })).data;
export const post = async (path, body, query) => (await request('POST', path, { body, query })).data;
export const put = async (path, body) => (await request('PUT', path, { body })).data;
export const del = async (path) => (await request('DELETE', path)).data;

// Pictures fetched this page load (path -> promise of an object URL), oldest first.
const pictures = new Map();
const KEPT_PICTURES = 300;

/**
 * An image function's picture (a sample's `data`: its URL on the images route) as an object URL.
 * The route wants the bearer token, which an <img> cannot send, so the bytes come by fetch.
 */
export function picture(address) {
  const path = new URL(address, location.href).pathname;
  let pending = pictures.get(path);
  if (!pending) {
    pending = (async () => {
      const token = session.token();
      if (!token) throw sessionEnded(new ApiError(401, 'not signed in'));
      const res = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
      if (!res.ok) throw new ApiError(res.status, `${res.status} ${res.statusText}`.trim());
      return URL.createObjectURL(await res.blob());
    })();
    pending.catch(() => pictures.delete(path));
    pictures.set(path, pending);
    if (pictures.size > KEPT_PICTURES) {
      const [oldest, shown] = pictures.entries().next().value;
      pictures.delete(oldest);
      shown.then(URL.revokeObjectURL, () => {});
    }
  }
  return pending;
}

/** `/v1/functions/<id><rest>`: every function route hangs off this. */
export function fn(id, rest = '') {
  return `/v1/functions/${encodeURIComponent(id)}${rest}`;
}
