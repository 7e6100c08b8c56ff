// The REST routes the console reads, with the API key of this tab.
//
// The key lives in sessionStorage (asked for once per tab, on the first 401)
// and travels only as the x-goog-api-key header, never in a URL.

const KEY = "footfall.apiKey";
const RETRY_MS = 1000;  // before a dropped watch is opened again
export const UNREACHABLE = "The server did not answer: it has stopped, is restarting, or " +
  "cannot be reached from this browser.";
// Sent on `document` when a call had no answer at all: the page says so once, on top
// (see unanswered).
export const UNANSWERED = "footfall:unanswered";

/** Whether `error` is that of a call that had no answer at all: said once, on top of
 *  the page, not again by each list that tries again by itself (the live feed said
 *  "The server did not answer" three times: on top and in each column). */
export const unanswered = (error) => error?.code === "UNAVAILABLE" && error.message === UNREACHABLE;

/** A refused call: `code` is the status name (INVALID_ARGUMENT), the message Google's,
 *  `reason` its ErrorInfo's when it has one (ROLE_NOT_ALLOWED, PROJECT_NOT_GRANTED...). */
class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `HTTP ${status}`);
    this.code = error?.status || "";
    this.reason = (error?.details || []).find((detail) => detail?.reason)?.reason || "";
  }
}

let asking = null;  // the one pending key prompt, shared by every call that met a 401
let declined = false;  // the prompt was closed without a key (Escape): not asked again

// Sent on `document` when the key dialog opens: the server answered (401), so whatever
// says it did not answer is wrong now. (Restarted with keys, it was said gone under the
// dialog until a key was given.)
export const ASKING_KEY = "footfall:asking-key";

/** Shows the key dialog; resolves once a key is stored, or fails UNAUTHENTICATED when
 *  it is closed without one (Escape reopened it at once, with no way out), and from
 *  then on without asking, until the page is loaded again (Change key). */
function askKey(why) {
  if (declined) return Promise.reject(noKeyGiven());
  if (asking) return asking;
  const dialog = document.getElementById("key-dialog");
  const input = document.getElementById("key-input");
  document.getElementById("key-why").textContent = why || "";
  input.value = "";
  asking = new Promise((resolve, reject) => {
    dialog.addEventListener("close", () => {
      asking = null;
      if (input.value) {
        sessionStorage.setItem(KEY, input.value);
        // (kept in sessionStorage alone: left in the closed dialog's input, any script
        // of the page, an extension, or a form filler could read it there)
        input.value = "";
        resolve();
      } else {
        declined = true;
        reject(noKeyGiven());
      }
    }, {once: true});
  });
  // Closed without a key: by Escape, or by this button where there is no Escape (a
  // phone's screen keyboard has none: the dialog could not be left without a key).
  document.getElementById("key-later").onclick = () => {
    input.value = "";
    dialog.close();
  };
  dialog.showModal();
  input.focus();
  document.dispatchEvent(new Event(ASKING_KEY));
  return asking;
}

/** What a call meets once the key prompt was closed without a key. */
export const noKeyGiven = () => new ApiError(401, {status: "UNAUTHENTICATED",
  message: "No API key given: this server answers only calls that carry one (Enter key, above)."});

/** Whether the key prompt was closed without a key: no call is answered until one is. */
export const keyDeclined = () => declined;

export function forgetKey() {
  sessionStorage.removeItem(KEY);
}

export function hasKey() {
  return sessionStorage.getItem(KEY) !== null;
}

function withQuery(path, query) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== "") params.set(name, value);
  }
  return path + (params.size ? `?${params}` : "");
}

// A call that has had no answer for this long is said on the page (see whenWaiting).
export const WAITING_MS = 5000;
let waiting = 0;  // calls past WAITING_MS with no answer yet
let onWaiting = null;

/** `fn(true)` once some call has waited WAITING_MS for an answer, `fn(false)` once none
 *  waits. A browser opens at most six connections to one server over http://, and
 *  each console tab's live feed holds two: a fourth tab's calls waited, its page
 *  blank, and nothing said why. */
export function whenWaiting(fn) { onWaiting = fn; }

/** fetch(), said on the page when it has no answer for WAITING_MS (see whenWaiting). */
async function timedFetch(url, init) {
  let late = false;
  const timer = setTimeout(() => {
    late = true;
    if (++waiting === 1) onWaiting?.(true);
  }, WAITING_MS);
  try {
    return await fetch(url, init);
  } finally {
    clearTimeout(timer);
    if (late && --waiting === 0) onWaiting?.(false);
  }
}

/** The response to `url` once it is a success; an ApiError otherwise. A 401
 *  asks for a key and tries again. */
async function send(url, {method = "GET", body, signal} = {}) {
  for (;;) {
    const headers = {};
    const key = sessionStorage.getItem(KEY);
    if (key) headers["x-goog-api-key"] = key;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await timedFetch(url, {
        method, headers, signal, cache: "no-store", credentials: "omit",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      // fetch() says only "Failed to fetch" (a TypeError) when no answer came at all
      if (signal?.aborted) throw error;
      document.dispatchEvent(new Event(UNANSWERED));
      throw new ApiError(0, {status: "UNAVAILABLE", message: UNREACHABLE});
    }
    if (response.ok) return response;
    const answer = await response.json().catch(() => ({}));
    if (response.status !== 401) throw new ApiError(response.status, answer.error);
    // The server's words matter once a key was sent ("API key not valid"); the first
    // time they only say what the dialog says (send one as x-goog-api-key).
    await askKey(key ? answer.error?.message : "");
  }
}

/** The JSON answer of `path` (with `query`), or an ApiError. */
export async function call(path, {method = "GET", query = {}, body, signal} = {}) {
  const response = await send(withQuery(path, query), {method, body, signal});
  return response.json();
}

const byId = (a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1);

/** The server-sent events of `response`, one {event, data} at a time. */
async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const found = {event: "message", data: []};
      for (const line of buffer.slice(0, end).split("\n")) {
        const [field, ...rest] = line.split(":");
        const text = rest.join(":").replace(/^ /, "");
        if (field === "event") found.event = text;
        else if (field === "data") found.data.push(text);
      }
      buffer = buffer.slice(end + 2);
      // (an event without data, as the stream's first id: is, is not one: the spec's)
      if (found.data.length) yield {event: found.event, data: found.data.join("\n")};
    }
  }
}

const pause = (ms, signal) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms);
  signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, {once: true});
});

/** The item of id `id` of the watch route `path:watch` (one whose list is not in id
 *  order, so that the newest pages may not hold it): the watch after `id - 1` sends
 *  it first if it is there; null when it sends another first; `late` (null unless
 *  given) when it sends nothing within `waitMs`: no later item is stored, or the
 *  server (or a connection to it) is slow to answer. */
export async function findById(path, id, {signal, waitMs = 3000, late = null} = {}) {
  if (BigInt(id) < 1n) return null;  // (row ids start at 1: a watch after -1 is refused)
  const stop = new AbortController();
  const both = AbortSignal.any([signal, stop.signal]);
  const timer = setTimeout(() => stop.abort(), waitMs);
  try {
    const response = await send(withQuery(`${path}:watch`,
      {afterId: String(BigInt(id) - 1n)}), {signal: both});
    for await (const {event, data} of events(response)) {
      const message = JSON.parse(data);
      if (event === "error") throw new ApiError(message.error?.code, message.error);
      return message.id === id ? message : null;
    }
    return late;
  } catch (error) {
    if (stop.signal.aborted && !signal.aborted) return late;  // nothing came in time
    throw error;
  } finally {
    clearTimeout(timer);
    stop.abort();
  }
}

/** Calls `onItems(items)` with the newest page of the list route `path`, then
 *  with each item its watch route (`path:watch`) streams after them, until
 *  `signal` aborts. The stream's server-sent events are read with fetch(), as
 *  EventSource cannot send the key. A stream that drops is opened again after
 *  the last item seen; `onError` hears each failure, and null once items flow.
 *  `byTime`: the list's newest are by event time, not by id (user events), so the
 *  watch is opened first, from now, and the page read after it: a watch after the
 *  page's highest id sent again every event stored later with an older time (an
 *  import of history replayed thousands as if new). What both hold is shown once.
 *  `onListed()` once the first page is in, or the first try failed: a browser
 *  opens at most six connections to one server, shared by all its tabs, and a page
 *  that follows two lists must not hold one's stream while the other's page waits. */
export async function follow(path, field,
  {query = {}, onItems, onError, onListed, signal, byTime = false}) {
  let after = null;  // the highest id the stream sent
  const shown = new Set();  // the ids of the page (the stream may send them again)
  let listed = onListed;  // called once, when the first page is in or the first try failed
  const firstTried = () => { listed?.(); listed = null; };
  document.addEventListener(ASKING_KEY, () => onError?.(null), {signal});
  while (!signal.aborted) {
    try {
      let response;
      if (after === null && byTime) {
        response = await send(withQuery(`${path}:watch`, query), {signal});
        const page = await call(path, {query: {...query, pageSize: 100}, signal});
        // (oldest first, as the stream sends: the newest by time is shown on top)
        const items = (page[field] || []).filter((item) => !shown.has(item.id)).reverse();
        items.forEach((item) => shown.add(item.id));
        if (items.length) onItems(items);
        firstTried();
      } else {
        if (after === null) {
          const page = await call(path, {query: {...query, pageSize: 100}, signal});
          const items = (page[field] || []).sort(byId);
          after = items.length ? BigInt(items.at(-1).id) : 0n;
          if (items.length) onItems(items);
          firstTried();
        }
        response = await send(withQuery(`${path}:watch`,
          {...query, afterId: String(after)}), {signal});
      }
      onError?.(null);
      for await (const {event, data} of events(response)) {
        const message = JSON.parse(data);
        if (event === "error") throw new ApiError(message.error?.code, message.error);
        after = BigInt(message.id);
        if (shown.delete(message.id)) continue;  // (listed already)
        onItems([message]);
      }
    } catch (error) {
      firstTried();
      if (signal.aborted) return;
      onError?.(error);
      if (declined) return;  // (no key: asked again each second, each a 401, for ever)
      // (a bad filter or name: asked again, it is refused again, each second for ever)
      if (error?.code === "INVALID_ARGUMENT") return;
    }
    await pause(RETRY_MS, signal);
  }
}
