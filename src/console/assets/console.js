// paysim console: live updates (Server-Sent Events, polling as the fallback, a pause switch and
// the 5-second refresh of the original console), remembered settings and filters, hold countdowns.
// No inline script anywhere (the CSP forbids it): this file and htmx are all the page runs.
/* global document, location, localStorage, fetch, setTimeout, clearTimeout, setInterval, clearInterval, URL, DOMParser, Element, EventSource, URLSearchParams, history, htmx -- a browser script, run by the console page */
(() => {
  'use strict';
  const SETTINGS_KEY = 'paysim.console.settings';
  const FILTERS_KEY = 'paysim.console.filters.';
  /** Polling interval when the event stream cannot be used. */
  const FALLBACK_POLL_MS = 1000;
  const SLOW_POLL_MS = 5000;
  /** A change arriving while a refresh runs is folded into one more refresh after it. */
  const MIN_GAP_MS = 200;
  /**
   * And a refresh waits at least this many times as long as the service took to make its recent ones
   * (their `Server-Timing`; see spacingCost), up to SLOW_POLL_MS: a page that is costly to make (a
   * filter reading thousands of payments: 27 ms against 10 or less) is refreshed less often, so that
   * an open tab takes about a twentieth of the service's time at most (a user test: two filtered
   * tabs, refreshed four times a second under load, raised the API's p99 4–5×).
   */
  const COST_FACTOR = 20;
  /** How many refreshes' costs spacingCost looks at. */
  const COST_SAMPLES = 3;
  const LOGIN_PATH = '/console/login';

  const load = () => {
    try {
      return Object.assign({ mode: 'live', paused: false }, JSON.parse(localStorage.getItem(SETTINGS_KEY) || '{}'));
    } catch {
      return { mode: 'live', paused: false };
    }
  };
  const settings = load();
  const save = () => localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings));

  let source = null;
  let pollTimer = null;
  /** While live: refreshes the regions marked `data-poll`, whose changes the event stream does not tell (fault rules' hits). */
  let regionTimer = null;
  let pending = new Set();
  /** Each live region's HTML as the service last served it (the page's, then each refresh's): a refresh that brings the same leaves the region alone. */
  const servedHtml = new WeakMap();
  const noteServed = () => {
    for (const el of document.querySelectorAll('[data-topics][id]')) if (!servedHtml.has(el)) servedHtml.set(el, el.outerHTML);
  };
  let refreshing = false;
  let lastRefresh = 0;
  /** How long the service took to make the last COST_SAMPLES refreshes' pages, in ms, the latest last. */
  const costs = [];
  /**
   * The cost the refreshes are spaced by: the second highest of the last three, so it takes two slow
   * refreshes of the last three to space them out, not one. A single slow one is an outlier, not the
   * page's cost: a cold service's first renders (JIT, the first rows' markup: 70–150 ms against 2–7
   * once warm) spaced a new page's next change 1.4–3 s, up to 5 s, past the console's 1 s (a test,
   * 2026-12-08); a page that is costly to make, or a service that is slow under load, costs as much
   * again on the next refresh, and from then on its refreshes are spaced (a page makes at most one
   * refresh at MIN_GAP_MS after a slow one before they are).
   */
  const spacingCost = () => [...costs].sort((a, b) => b - a)[1] ?? 0;
  /** What the service says a page took to make (`Server-Timing: app;dur=…`), 0 when it does not say. */
  const serverCost = (res) => {
    const match = /(?:^|,)\s*app;dur=([\d.]+)/.exec(res.headers.get('server-timing') || '');
    return match === null ? 0 : Number(match[1]);
  };

  /** What the mode shows while refreshes succeed ('Live', 'Refreshing every 5 s'…). */
  let modeStatus = null;
  /** Why the last refresh failed (null once one succeeds): shown instead of the mode, with a log-in link when the session ended. */
  let failure = null;
  /** While live and failing: the next try (the 5-second schedule; the event stream may tell nothing for long). */
  let retryTimer = null;

  const showStatus = () => {
    const el = document.getElementById('live-status');
    if (el === null || modeStatus === null) return;
    const shown = failure === null ? modeStatus : { text: failure.text, state: 'error' };
    el.textContent = shown.text;
    if (failure !== null && failure.login) {
      const link = document.createElement('a');
      link.href = '/console/login?next=' + encodeURIComponent(location.pathname + location.search);
      link.textContent = 'log in again';
      el.append(' ', link);
    }
    el.dataset.state = shown.state;
  };

  const setStatus = (text, state) => {
    modeStatus = { text, state };
    showStatus();
  };

  /** A refresh failed: say so (the status is an aria-live region), and keep trying on the schedule. */
  const retrying = () => (pollTimer !== null && settings.mode !== '5s' ? 'Retrying every second.' : 'Retrying every 5 s.');

  const failed = (text, login = false) => {
    if (settings.paused) return;
    const changed = failure === null || failure.text !== text;
    failure = { text, login };
    if (changed) showStatus();
    if (source !== null && retryTimer === null) {
      retryTimer = setTimeout(() => {
        retryTimer = null;
        if (failure !== null && source !== null) refresh(null);
      }, SLOW_POLL_MS);
    }
  };

  const succeeded = () => {
    if (failure === null) return;
    failure = null;
    showStatus();
  };

  /** The answer of a refresh: its HTML, or null after saying why it cannot be used. */
  const answered = (res) => {
    const ended = res.status === 401 || (res.redirected && new URL(res.url, location.href).pathname === LOGIN_PATH);
    if (ended) {
      failed('Session ended:', true);
      return Promise.resolve(null);
    }
    if (res.ok) return res.text();
    // The console's error page says why in its notice (`The store is unavailable; retry shortly.`).
    return res.text().then(
      (text) => {
        const why = new DOMParser().parseFromString(text, 'text/html').querySelector('.notice-error');
        failed(`Refresh failed: error ${res.status}${why === null ? '.' : ' · ' + why.textContent.trim()} ${retrying()}`);
        return null;
      },
      () => {
        failed(`Refresh failed: error ${res.status}. ${retrying()}`);
        return null;
      },
    );
  };

  /**
   * Never pull content from under the keyboard or a half-filled form: a region holding the focus,
   * or a form field someone changed, waits (stale) until the focus leaves it.
   */
  const busy = (el) => {
    const active = document.activeElement;
    if (active && active !== document.body && el.contains(active)) return true;
    for (const field of el.querySelectorAll('input, textarea, select')) {
      if (field.type === 'hidden') continue;
      if (field.tagName === 'SELECT' ? [...field.options].some((o) => o.selected !== o.defaultSelected) : field.type === 'checkbox' ? field.checked !== field.defaultChecked : field.value !== field.defaultValue) return true;
    }
    return false;
  };

  /** A query string without the last action's notice (`notice=`). */
  const noticeless = (query) => {
    const params = new URLSearchParams(query);
    params.delete('notice');
    return params.toString();
  };
  /** A page's address without the last action's notice, which a refused form takes out of it. */
  const pageOf = (address) => {
    const [path, query = ''] = address.split('?');
    return path + '?' + noticeless(query);
  };

  /** Swaps in the fresh content of every region showing one of `topics` (all regions when null). */
  const refresh = (topics) => {
    if (topics === null) pending.add('*');
    else for (const t of topics) pending.add(t);
    if (refreshing) return;
    // A hidden page (another tab, a minimised window) is not refreshed: what changed meanwhile is
    // fetched once, when it shows again (a user test: hidden tabs refreshed as often as shown ones).
    if (document.hidden) return;
    const gap = Math.min(SLOW_POLL_MS, Math.max(MIN_GAP_MS, COST_FACTOR * spacingCost()));
    const wait = Math.max(0, lastRefresh + gap - Date.now());
    refreshing = true;
    setTimeout(() => {
      // Paused or hidden while it waited: what it would have fetched waits for the switch or for
      // the page to show again (either refreshes; a review: a hidden page still made this one).
      if (settings.paused || document.hidden) {
        refreshing = false;
        return;
      }
      const wanted = pending;
      pending = new Set();
      const regions = [...document.querySelectorAll('[data-topics][id]')].filter((el) => {
        if (wanted.has('*')) return true;
        return el.dataset.topics.split(' ').some((t) => wanted.has(t));
      });
      const ready = regions.filter((el) => !busy(el));
      for (const el of regions) if (!ready.includes(el)) el.dataset.stale = 'true';
      const url = location.pathname + location.search;
      const page = pageOf(url);
      // One request for the whole page; each region wanted is swapped from it (DOMParser runs no script).
      const job =
        ready.length === 0
          ? Promise.resolve()
          : fetch(url, { headers: { 'x-console-refresh': '1' }, credentials: 'same-origin' })
              .then((res) => {
                costs.push(serverCost(res));
                if (costs.length > COST_SAMPLES) costs.shift();
                return pageOf(location.pathname + location.search) === page ? answered(res) : null;
              })
              .then((text) => {
                if (text === null) return;
                succeeded();
                const fresh = new DOMParser().parseFromString(text, 'text/html');
                // The process that answered: under CLUSTER_WORKERS (or a balancer without the
                // sticky cookie) a refresh on a new connection may reach another one, whose
                // figures it swaps in (a review).
                const servedBy = fresh.getElementById('served-by');
                const header = document.getElementById('served-by');
                if (servedBy !== null && header !== null && header.textContent !== servedBy.textContent) header.textContent = servedBy.textContent;
                for (const el of ready) {
                  const next = fresh.getElementById(el.id);
                  if (next === null || !el.isConnected) continue;
                  // Checked again: the person may have started typing while the page was fetched.
                  if (busy(el)) {
                    el.dataset.stale = 'true';
                    continue;
                  }
                  // Unchanged since it was last served: left as it is (replaced every 5 s, a screen
                  // reader reading it was moved each time; an accessibility review).
                  const served = next.outerHTML;
                  if (servedHtml.get(el) === served) continue;
                  const adopted = document.importNode(next, true);
                  servedHtml.set(adopted, served);
                  // A table someone opened (the charts' <details>) stays open across refreshes.
                  for (const open of el.querySelectorAll('details[id][open]')) adopted.querySelector(`details[id="${open.id}"]`)?.setAttribute('open', '');
                  el.replaceWith(adopted);
                  if (typeof htmx !== 'undefined') htmx.process(adopted);
                }
              })
              // No answer at all: the service is down or unreachable.
              .catch(() => failed(`Refresh failed: the service did not answer. ${retrying()}`));
      const jobs = [job];
      Promise.all(jobs).finally(() => {
        lastRefresh = Date.now();
        refreshing = false;
        document.body.dataset.refreshed = String(lastRefresh);
        if (pending.size > 0) refresh([]);
      });
    }, wait);
  };

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && pending.size > 0) refresh([]);
  });

  document.addEventListener('focusout', (event) => {
    const region = event.target instanceof Element ? event.target.closest('[data-stale]') : null;
    if (region !== null && !region.contains(event.relatedTarget)) {
      delete region.dataset.stale;
      refresh(region.dataset.topics.split(' '));
    }
  });

  const stop = () => {
    if (source !== null) source.close();
    source = null;
    if (pollTimer !== null) clearInterval(pollTimer);
    pollTimer = null;
    if (regionTimer !== null) clearInterval(regionTimer);
    regionTimer = null;
    if (retryTimer !== null) clearTimeout(retryTimer);
    retryTimer = null;
  };

  /** The topics of the regions on the page marked `data-poll` (none on most pages: then nothing is fetched). */
  const pollRegions = () => {
    const topics = [...document.querySelectorAll('[data-topics][data-poll][id]')].flatMap((el) => el.dataset.topics.split(' '));
    if (topics.length > 0) refresh(topics);
  };

  const poll = (ms, text, state) => {
    stop();
    pollTimer = setInterval(() => refresh(null), ms);
    setStatus(text, state);
  };

  const start = () => {
    stop();
    if (settings.paused) {
      failure = null; // nothing is refreshed while paused: the next refresh tells again
      return setStatus('Paused', 'paused');
    }
    if (settings.mode === '5s') return poll(SLOW_POLL_MS, 'Refreshing every 5 s', 'slow');
    if (typeof EventSource === 'undefined') return poll(FALLBACK_POLL_MS, 'Polling every second (no event stream)', 'polling');
    source = new EventSource('/console/events');
    regionTimer = setInterval(pollRegions, SLOW_POLL_MS);
    source.addEventListener('hello', () => {
      setStatus('Live', 'live');
      refresh(null); // whatever changed while the stream was down
    });
    // The store went away or came back (no change may come for the whole outage): a refresh now
    // says so (the store's 503), or clears it.
    source.addEventListener('store', () => refresh(null));
    source.addEventListener('change', (event) => {
      try {
        refresh(JSON.parse(event.data).topics);
      } catch {
        refresh(null);
      }
    });
    source.onerror = () => {
      // The browser reconnects by itself; while it cannot, poll so the page stays current.
      if (source !== null && source.readyState === EventSource.CLOSED) poll(FALLBACK_POLL_MS, 'Polling every second (event stream closed)', 'polling');
      else setStatus('Reconnecting…', 'reconnecting');
    };
  };

  /** The header's controls (re-bound after each boosted navigation swaps the body). */
  const bindControls = () => {
    const pause = document.getElementById('pause');
    const mode = document.getElementById('refresh-mode');
    if (pause !== null && pause.dataset.bound === undefined) {
      pause.dataset.bound = '1';
      pause.checked = settings.paused;
      pause.addEventListener('change', () => {
        settings.paused = pause.checked;
        save();
        start();
      });
    }
    if (mode !== null && mode.dataset.bound === undefined) {
      mode.dataset.bound = '1';
      mode.value = settings.mode;
      mode.addEventListener('change', () => {
        settings.mode = mode.value === '5s' ? '5s' : 'live';
        save();
        start();
      });
    }
    const status = document.getElementById('live-status');
    if (status !== null && status.dataset.state === undefined) {
      if (modeStatus !== null) return showStatus(); // a boosted navigation's new header: what the page knows
      // Its colour says what its words say: green (live) once the stream is open, not while it connects
      // (it was: "Connecting…" in green, and a test waiting for live went on before the stream's hello).
      const [text, state] = settings.paused
        ? ['Paused', 'paused']
        : source !== null && source.readyState === EventSource.OPEN
          ? ['Live', 'live']
          : pollTimer !== null
            ? settings.mode === '5s'
              ? ['Refreshing every 5 s', 'slow']
              : ['Polling every second', 'polling']
            : ['Connecting…', 'connecting'];
      status.textContent = text;
      status.dataset.state = state;
    }
  };

  /** Filter forms remember their last query; a bare visit to the page applies it. */
  const rememberFilters = () => {
    const form = document.querySelector('form[data-remember]');
    if (form === null) return false;
    const key = FILTERS_KEY + form.dataset.remember;
    const params = new URLSearchParams(location.search);
    params.delete('notice');
    if (location.search === '' || location.search === '?') {
      const stored = localStorage.getItem(key);
      if (stored !== null && stored !== '') {
        location.replace(location.pathname + '?' + stored);
        return true;
      }
    } else {
      const kept = new URLSearchParams();
      for (const el of form.elements) if (el.name && params.get(el.name)) kept.set(el.name, params.get(el.name));
      localStorage.setItem(key, kept.toString());
    }
    return false;
  };

  /**
   * Seats held show the minutes and seconds their hold has left, counting down between refreshes:
   * on screen, in the cell's title and in the name a screen reader reads (`data-left`; before
   * 2026-12-07 those two kept the time of the last refresh).
   */
  const tick = () => {
    const now = Date.now();
    for (const el of document.querySelectorAll('[data-until]')) {
      const s = Math.max(0, Math.ceil((Number(el.dataset.until) - now) / 1000));
      const left = Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
      el.textContent = left;
      const cell = el.closest('td');
      if (cell === null) continue;
      for (const spoken of cell.querySelectorAll('[data-left]')) spoken.textContent = left;
      cell.title = cell.title.replace(/\d+:\d{2} left$/, left + ' left');
    }
  };

  /** False when the page is being replaced by its remembered filters. */
  const init = () => {
    if (rememberFilters()) return false;
    bindControls();
    return true;
  };

  document.addEventListener('DOMContentLoaded', () => {
    noteServed();
    if (!init()) return;
    start();
    setInterval(tick, 1000);
  });
  // A boosted navigation replaced the body: bind the new header, apply remembered filters.
  document.addEventListener('htmx:afterSettle', (event) => {
    if (event.detail && event.detail.boosted) noteServed();
    if (event.detail && event.detail.boosted && init()) {
      // Back on a console page after its event stream closed (the session ended, then a log-in from
      // the 401 page or the login form): live again, not polling until a reload (a review).
      const closed = typeof EventSource !== 'undefined' && (source === null || source.readyState === EventSource.CLOSED);
      if (document.getElementById('live-status') !== null && !settings.paused && settings.mode === 'live' && closed) start();
    }
    bindControls();
  });
  // A refused form (a boosted POST answered with an error page): the page stays, with what was
  // typed, and the error goes just above the form, focused and announced as an alert. A session
  // that ended (401: the page's login link) and an answer without an error line replace the page.
  document.addEventListener('htmx:beforeSwap', (event) => {
    const detail = event.detail;
    // A boosted navigation swaps the body only: the page's CSRF token (in <head>) follows the answer's,
    // which a log-in or a log-out changes.
    const token = /<meta name="csrf-token" content="([^"]*)">/.exec(detail.xhr.responseText || '');
    const meta = document.querySelector('meta[name="csrf-token"]');
    if (token !== null && meta !== null) meta.content = token[1];
    // The event is the swap target's (the body); the request's element is the form sent.
    const sent = detail.requestConfig && detail.requestConfig.elt;
    const form = sent instanceof Element ? sent.closest('form') : null;
    if (detail.xhr.status < 400 || form === null || detail.xhr.status === 401) return;
    const refused = new DOMParser().parseFromString(detail.xhr.responseText, 'text/html').querySelector('main .notice-error');
    if (refused === null) return;
    detail.shouldSwap = false;
    const before = form.previousElementSibling;
    const shown = before !== null && before.classList.contains('form-error') ? before : document.createElement('p');
    shown.className = 'notice notice-error form-error';
    shown.setAttribute('role', 'alert');
    shown.tabIndex = -1;
    shown.textContent = refused.textContent;
    if (shown !== before) form.before(shown);
    // The last action's notice no longer tells what happened last (a user test: "Refund made." beside
    // a refused refund); nor does the address, should the page be reloaded (a refresh on its way
    // is still this page's: pageOf leaves the notice out; a review saw it dropped).
    for (const done of document.querySelectorAll('main .notice-ok')) done.remove();
    if (new URLSearchParams(location.search).has('notice')) {
      const rest = noticeless(location.search);
      history.replaceState(history.state, '', location.pathname + (rest === '' ? '' : '?' + rest) + location.hash);
    }
    shown.focus();
  });
  // After an action (a full page made by a redirect), its notice has the focus, not the page's start.
  const focusNotice = () => {
    const shown = document.querySelector('main > .notice');
    if (shown === null) return;
    shown.tabIndex = -1;
    shown.focus();
  };
  document.addEventListener('DOMContentLoaded', focusNotice);
  // A link followed without a page load (boosted): the new page's heading has the focus, so a
  // screen reader says where it is (the focus was left on the body, and nothing was said).
  const focusHeading = () => {
    const heading = document.querySelector('main h1');
    if (heading === null) return;
    heading.tabIndex = -1;
    heading.focus();
  };
  // After the reconciliation ran (`?reconcile=1`, its link on the FluxPay page): its result has the
  // focus and is in view, and the address no longer asks for it, so a reload or Back does not run the
  // whole read again (a user test: the result was 5,000 px down the page, unannounced, and Back ran it again).
  const reconciled = () => {
    const url = new URL(location.href);
    if (!url.searchParams.has('reconcile')) return false;
    url.searchParams.delete('reconcile');
    history.replaceState(history.state, '', url.pathname + url.search + url.hash);
    const result = document.getElementById('fluxpay-reconciliation');
    if (result === null) return false;
    result.tabIndex = -1;
    result.focus();
    // After htmx's own scroll of a boosted page to its top, which comes after this settle (a review:
    // the focused result stayed below the window).
    setTimeout(() => result.scrollIntoView({ block: 'start' }), 0);
    return true;
  };
  document.addEventListener('DOMContentLoaded', reconciled);
  /** The request whose answer showed a reconciliation: its other settled elements leave the focus there. */
  let reconciledBy = null;
  document.addEventListener('htmx:afterSettle', (event) => {
    if (!event.detail || !event.detail.boosted) return;
    if (event.detail.xhr !== undefined && event.detail.xhr === reconciledBy) return;
    if (reconciled()) {
      reconciledBy = event.detail.xhr;
      return;
    }
    const sent = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (document.querySelector('main > .notice') === null && sent instanceof Element && sent.closest('a') !== null) focusHeading();
    else focusNotice();
  });
  // Every htmx request (boosted forms included) carries the CSRF token as well.
  document.addEventListener('htmx:configRequest', (event) => {
    const meta = document.querySelector('meta[name="csrf-token"]');
    if (meta !== null) event.detail.headers['x-csrf-token'] = meta.content;
  });
  document.addEventListener('click', (event) => {
    const link = event.target instanceof Element ? event.target.closest('[data-clear-filters]') : null;
    if (link !== null) localStorage.removeItem(FILTERS_KEY + link.dataset.clearFilters);
  });
})();
