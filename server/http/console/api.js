// The REST routes the console reads, with the API key of this tab.
//
// The key lives in sessionStorage (asked for once per tab, on the first 401)
// and travels only as the x-goog-api-key header, never in a URL.

const KEY = "footfall.apiKey";
export const POLL_MS = 500;

export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = error?.status || "";
    this.details = error?.details || [];
  }
}

let asking = null;  // the one pending key prompt, shared by every call that met a 401

/** Shows the key dialog; resolves once a key is stored. */
export function askKey(why) {
  if (asking) return asking;
  const dialog = document.getElementById("key-dialog");
  const input = document.getElementById("key-input");
  document.getElementById("key-why").textContent = why || "";
  input.value = "";
  asking = new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      asking = null;
      if (input.value) sessionStorage.setItem(KEY, input.value);
      resolve();
    }, {once: true});
  });
  dialog.showModal();
  input.focus();
  return asking;
}

export function forgetKey() {
  sessionStorage.removeItem(KEY);
}

export function hasKey() {
  return sessionStorage.getItem(KEY) !== null;
}

/** The JSON answer of `path` (with `query`), or an ApiError. A 401 asks for a
 *  key and tries again. */
export async function call(path, {method = "GET", query = {}, body, signal} = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== "") params.set(name, value);
  }
  const url = path + (params.size ? `?${params}` : "");
  for (;;) {
    const headers = {};
    const key = sessionStorage.getItem(KEY);
    if (key) headers["x-goog-api-key"] = key;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(url, {
      method, headers, signal, cache: "no-store", credentials: "omit",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    if (response.ok) return answer;
    if (response.status === 401) {
      await askKey(answer.error?.message);
      continue;
    }
    throw new ApiError(response.status, answer.error);
  }
}

/** Every item of `field` in the pages of `path`, up to `limit`. */
export async function listAll(path, field, {query = {}, limit = 1000, signal} = {}) {
  const items = [];
  let pageToken = "";
  do {
    const page = await call(path, {query: {...query, pageSize: 100, pageToken}, signal});
    items.push(...(page[field] || []));
    pageToken = page.nextPageToken || "";
  } while (pageToken && items.length < limit);
  return items;
}

/** Calls `onItems(items)` with the items of the list route `path` (newest
 *  first, each with an increasing `id`) that are newer than any seen: first the
 *  newest page, then what arrives, until `signal` aborts. `onError` hears each
 *  failed read (the next poll tries again).
 *
 *  The one place a watch route (its server-sent events read with fetch(), as
 *  EventSource cannot send the key) would take over from polling. */
export function follow(path, field, {query = {}, onItems, onError, signal}) {
  let newest = -1n;
  const poll = async () => {
    try {
      const page = await call(path, {query: {...query, pageSize: 100}, signal});
      const fresh = (page[field] || []).filter((item) => BigInt(item.id) > newest);
      for (const item of fresh) if (BigInt(item.id) > newest) newest = BigInt(item.id);
      fresh.sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
      onError?.(null);
      if (fresh.length) onItems(fresh);
    } catch (error) {
      if (signal.aborted) return;
      onError?.(error);
    }
    if (!signal.aborted) setTimeout(poll, POLL_MS);
  };
  poll();
}
