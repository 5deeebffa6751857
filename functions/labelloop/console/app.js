// The shell: a hash router, the header, and what happens when the session ends.
// Each page gets a fresh <section> and a context whose cleanups run when the route changes
// (pollers, key handlers, a deferred dismiss that must still be sent).

import { onUnauthorized, session } from './api.js';
import { clearError } from './ui.js';
import { signInPage, functionsPage } from './pages.js';
import { overviewPage } from './overview.js';
import { reviewPage } from './review.js';
import { samplesPage } from './samples.js';
import { thresholdsPage } from './thresholds.js';

const ROUTES = [
  [/^#\/signin$/, signInPage, { public: true }],
  [/^#\/functions$/, functionsPage],
  [/^#\/functions\/([^/]+)$/, overviewPage],
  [/^#\/functions\/([^/]+)\/review$/, reviewPage],
  [/^#\/functions\/([^/]+)\/samples$/, samplesPage],
  [/^#\/functions\/([^/]+)\/thresholds$/, thresholdsPage],
];
const RETURN_TO = 'labelloop.returnTo';

let current = null;
// Why the sign-in page shows: null (signed out, first visit) or 'expired'. It sticks until
// the next sign-in or sign-out: the parallel requests of a page all fail alike when a token
// dies, and a later one must not wipe the message an earlier one set.
let notice = null;

function goSignIn(why) {
  if (why) notice = why;
  if (location.hash !== '#/signin') {
    sessionStorage.setItem(RETURN_TO, location.hash);
    location.hash = '#/signin'; // routes on hashchange
  } else {
    route();
  }
}

onUnauthorized((expired) => goSignIn(expired ? 'expired' : null));

function leave() {
  if (!current) return;
  for (const fn of current.cleanups.splice(0)) {
    try {
      fn();
    } catch (err) {
      console.error(err);
    }
  }
  current.alive = false;
  current = null;
}

function route() {
  const hash = location.hash || '#/functions';
  if (current && current.hash === hash && current.notice === notice) return; // already showing
  leave();
  clearError();
  const match = ROUTES.map(([re, page, opts]) => [re.exec(hash), page, opts || {}])
    .find(([m]) => m);
  if (!match) {
    location.replace('#/functions');
    return;
  }
  const [m, page, opts] = match;
  if (!opts.public && !session.hasToken()) {
    goSignIn(null);
    return;
  }
  document.getElementById('topnav').hidden = !session.hasToken() || opts.public;
  const root = document.createElement('section');
  root.className = 'page';
  document.getElementById('view').replaceChildren(root);
  const ctx = {
    root,
    hash,
    alive: true,
    cleanups: [],
    onCleanup(fn) {
      this.cleanups.push(fn);
    },
    notice,
    // After signing in: back to where the session ended, else the functions list.
    signedIn() {
      notice = null;
      const back = sessionStorage.getItem(RETURN_TO);
      sessionStorage.removeItem(RETURN_TO);
      location.hash = back && back !== '#/signin' ? back : '#/functions';
    },
  };
  current = ctx;
  page(ctx, ...m.slice(1).map(decodeURIComponent));
}

document.getElementById('banner-close').addEventListener('click', clearError);
document.getElementById('signout').addEventListener('click', () => {
  session.clear();
  sessionStorage.removeItem(RETURN_TO);
  notice = null;
  location.hash = '#/signin';
});
// A page leaving for good (tab closed, reload) gets the same cleanups as a route change.
window.addEventListener('pagehide', leave);
window.addEventListener('hashchange', route);
route();
window.addEventListener('pageshow', (e) => {
  if (e.persisted) route(); // back from the bfcache: the page was left above, so start it again
});
