// #feed: accepted events of the chosen catalog beside the requests refused in
// every project (or those that named the chosen catalog), as they arrive.
// #feed?tenant=...: the accepted client events of a talent tenant (with no catalog
// holding events, those of the first tenant) beside the refusals likewise.

import {call, findById, follow} from "./api.js";
import {clientEventLink} from "./client-event.js";
import {h, liveFailure, when} from "./dom.js";
import {eventLink, remember} from "./event.js";
import {jsonView} from "./json.js";
import {route} from "./names.js";

export const KEPT = 200;  // items each column keeps on screen
// How often a column asks whether the first item it showed is still stored: a reset
// (a test suite's, between its tests) deleted what the feed showed, and the feed
// went on showing it, the new events on top of those gone, until the page was
// reloaded. (Nothing on the watch says so: ids are never given again.)
const STILL_STORED_MS = 4000;
// How long it waits for the server to send that item: sent at once when it is stored,
// later only when the watches are behind (a busy server); past it, the list says
// whether the items shown are there (see whileStored).
const FIND_MS = 5000;
// Whether the refused column shows only the requests that named the chosen catalog
// (or the tenant followed; kept for the tab, as the chosen catalog is).
const OF_CATALOG = "footfall.refusedOfCatalog";

/** `talent.v4beta1.EventService/CreateClientEvent` for the gRPC method name
 *  `/google.cloud.talent.v4beta1.EventService/CreateClientEvent`, as `footfall
 *  rejections` says it: the API and its version stay (a refusal of v4 and one of
 *  v4beta1 are told apart), the prefix every retail and talent name shares goes. */
function rpcName(method) {
  return method.replace(/^\/+/, "").replace(/^google\.cloud\./, "");
}

/** A refusal, opened with Enter or a click: its message, and the request with
 *  each violation beside its field. */
export function rejectionItem(rejection) {
  const method = rpcName(rejection.method || "");
  let request = null;
  try {
    request = rejection.requestJson ? JSON.parse(rejection.requestJson) : null;
  } catch {
    request = null;  // cut short: shown as text below
  }
  // A pixel's event travels as a JSON text (CollectUserEventRequest.user_event, or
  // raw_json): shown as the object it names, so each violation finds its field.
  for (const field of ["userEvent", "rawJson"]) {
    if (typeof request?.[field] !== "string") continue;
    try {
      request[field] = JSON.parse(request[field]);
    } catch {
      // not JSON: shown as sent
    }
  }
  const violations = rejection.fieldViolations || [];
  return h("details", {class: "rejection", "data-id": rejection.id},
    h("summary", {},
      h("time", {}, when(rejection.time)), " ",
      // (on a phone it breaks after the service, not inside a word)
      h("strong", {}, method.split(/(?<=\/)/).map((part, i) => [i ? h("wbr") : null, part])),
      " ",
      h("span", {class: "tag bad"}, codeName(rejection.code)), " ",
      shortMessage(rejection.message || "", violations),
      rejection.repeats ? [" ", h("span", {class: "tag repeats",
        title: `refused ${Number(rejection.repeats) + 1} times alike, the last at ${
          when(rejection.lastTime)}`}, `×${Number(rejection.repeats) + 1}`)] : null),
    h("dl", {class: "facts"},
      h("dt", {}, "Parent"), h("dd", {}, rejection.parent || "(none)"),
      h("dt", {}, "Came by"), h("dd", {}, rejection.transport || "TRANSPORT_UNSPECIFIED"),
      rejection.keyName ? [h("dt", {}, "Key"), h("dd", {}, rejection.keyName)] : null,
      rejection.repeats ? [h("dt", {}, "Refused"),
        h("dd", {}, `${Number(rejection.repeats) + 1} times alike, the last at ${
          when(rejection.lastTime)}`)] : null,
      rejection.operation ? [h("dt", {}, "Operation"), h("dd", {}, rejection.operation)] : null),
    violations.length && !request ? h("ul", {class: "violations"}, violations.map((v) =>
      h("li", {}, h("code", {}, v.field), ": ", v.description))) : null,
    request ? jsonView(request, violations)
      : rejection.requestJson ? h("pre", {class: "json"}, rejection.requestJson)
        : null,
    rejection.requestTruncated ? h("p", {class: "hint"}, "The request was cut to its first few KB.")
      : null);
}

const FEW = 3;  // violations a closed refusal names
// the server's count of those it left out: "more than" when it stopped looking for them
const MORE = /^and (more than )?(\d+) (?:more|other) violations?$/;

/** The message of a refusal: closed, its first FEW violations and how many more it
 *  names (a refusal of 120 took a screen and a half, closed); opened, all of it.
 *  The whole message when it names FEW or fewer, or does not read as `violations`
 *  joined by "; " (the kept ones: the first 20), as the server writes it. */
function shortMessage(message, violations) {
  const whole = h("span", {class: "message"}, message);
  const texts = violations.map((v) => (v.field ? `${v.field}: ` : "") + (v.description || ""));
  const head = texts.slice(0, FEW).join("; ");
  const at = violations.length > FEW ? message.indexOf(`${head}; `) : -1;
  if (at < 0) return whole;
  // those after the first FEW: the kept ones as they are, the rest as the server
  // splits a message into violations ("; "), its count of those left out counted
  const kept = texts.join("; ");
  const parts = message.startsWith(kept, at)
    ? [...texts.slice(FEW), ...message.slice(at + kept.length).split("; ").slice(1)]
    : message.slice(at + head.length + 2).split("; ");
  const counts = parts.map((part) => MORE.exec(part));
  const more = counts.reduce((n, found) => n + Number(found?.[2] || 1), 0);
  const over = counts.some((found) => found?.[1]) ? "over " : "";
  whole.classList.add("opened");
  return [h("span", {class: "message closed"}, message.slice(0, at + head.length),
    `; and ${over}${more.toLocaleString("en-US")} more`), whole];
}

// google.rpc.Code names, for the number a Rejection carries.
const CODES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
  "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
  "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"];

function codeName(code) {
  return CODES[code || 0] || String(code);
}

// How often, at most, a screen reader hears what came: each event said as it came
// would talk over itself at a few events a second, and over whatever else was read.
const NEWS_MS = 5000;

/** A polite live region, hidden, that says in one sentence what came into the columns
 *  since it last spoke, at most every NEWS_MS: the lists themselves are not live (a
 *  screen reader heard nothing of new events, and read as they came, 200 kept events
 *  would flood it). `note(kind, n)`: n more of "accepted" or "refused". */
export function news(signal) {
  const region = h("p", {class: "hidden", role: "status", id: "feed-news"});
  const pending = {accepted: 0, refused: 0};
  let timer = null;
  let last = 0;
  const say = () => {
    timer = null;
    last = Date.now();
    const parts = [];
    if (pending.accepted) parts.push(counted(pending.accepted, "new event", "new events"));
    if (pending.refused) parts.push(counted(pending.refused, "request refused", "requests refused"));
    pending.accepted = pending.refused = 0;
    if (parts.length) region.textContent = `${parts.join(", ")}.`;
  };
  signal.addEventListener("abort", () => clearTimeout(timer), {once: true});
  return {
    region,
    note(kind, n) {
      pending[kind] += n;
      timer ??= setTimeout(say, Math.max(0, last + NEWS_MS - Date.now()));
    },
  };
}

const counted = (n, one, many) => `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`;

/** The feed's Pause button: while pressed, what comes is counted and held, not shown
 *  (WCAG 2.2.2: the lists moved under a reader's eyes, and an event read near the
 *  bottom of the 200 kept went from the page). `onResume()` shows what was held. */
export function pauser(onResume) {
  const button = h("button", {type: "button", id: "feed-pause", "aria-pressed": "false"},
    "Pause");
  const said = h("span", {class: "hint", id: "feed-held"});
  let held = 0;
  const state = {
    paused: false,
    held(n) {
      held += n;
      said.textContent = held ? `${counted(held, "new item", "new items")} held.`
        : "Paused: what comes is held.";
    },
    element: h("p", {class: "row"}, button, said),
  };
  button.addEventListener("click", () => {
    state.paused = !state.paused;
    button.setAttribute("aria-pressed", String(state.paused));
    said.textContent = state.paused ? "Paused: what comes is held." : "";
    held = 0;
    if (!state.paused) onResume();
  });
  return state;
}

function column(id, title, hint, heard, pause) {
  let live = false;  // once the first page is in: what comes after is news
  let held = [];  // [item, render, weight] that came while paused, oldest first (KEPT at most)
  let heldCount = 0;  // what those counted in the Pause button's line
  const count = h("span", {class: "count"}, "0");
  const status = h("div", {class: "status", role: "status"});
  const list = h("ol", {class: "feed", reversed: true, id});
  const about = h("p", {class: "hint"}, hint);
  // Said once the first page is in and empty, until an item comes (as the talent page
  // says it): an empty column said nothing, as if it were still reading.
  const none = h("p", {class: "hint", id: `${id}-none`, hidden: true},
    "None yet; each one shows here as it comes.");
  let failed = false;  // (beside a failure, "None yet" would be a guess)
  const sayNone = () => { none.hidden = !live || failed || total > 0; };
  const heading = h("h3", {id: `${id}-h`, tabindex: "-1"}, `${title} `, count);
  const section = h("section", {"aria-labelledby": `${id}-h`}, heading, about, status, none,
    list);
  let total = 0;
  let first = null;  // the lowest id added since the column started (BigInt)
  return {
    section,
    /** The lowest id added since the column last started, as a string; null if none. */
    get first() { return first === null ? null : String(first); },
    /** Start again empty, saying `hint`. */
    clear(hint) {
      total = 0;
      first = null;
      live = false;
      held = [];
      // (a column started again while paused, "Only those that named this catalog"
      // turned, took its held items from the line's count too: it said more than came)
      if (heldCount) pause.held(-heldCount);
      heldCount = 0;
      count.textContent = "0";
      about.replaceChildren(...h("p", {}, hint).childNodes);
      // (the focus on an item, gone with it, fell to the page's body: read again after a
      // reset, the keyboard started over from the top of the page)
      const focused = list.contains(document.activeElement);
      list.replaceChildren();
      if (focused) heading.focus({preventScroll: true});
      status.replaceChildren();
      sayNone();
    },
    /** From now on, what is added is news. */
    listed() {
      live = true;
      sayNone();
    },
    add(items, render, weight = () => 1) {
      for (const item of items) {
        if (first === null || BigInt(item.id) < first) first = BigInt(item.id);
      }
      const added = items.reduce((n, item) => n + weight(item), 0);
      total += added;
      sayNone();
      if (live) heard(added);
      count.textContent = total.toLocaleString("en-US");
      if (pause.paused && live) {
        held.push(...items.map((item) => [item, render, weight(item)]));
        held.splice(0, held.length - KEPT);
        // (the line counts what the resume will show: it counted those dropped here
        // too, "210 new items held" of 200)
        const kept = held.reduce((n, [, , w]) => n + w, 0);
        pause.held(kept - heldCount);
        heldCount = kept;
        return;
      }
      for (const item of items) list.prepend(h("li", {}, render(item)));
      while (list.children.length > KEPT) list.lastChild.remove();
    },
    /** Shows what came while paused. */
    resume() {
      for (const [item, render] of held) list.prepend(h("li", {}, render(item)));
      held = [];
      heldCount = 0;
      while (list.children.length > KEPT) list.lastChild.remove();
    },
    error(error) {
      failed = Boolean(error);
      sayNone();
      status.replaceChildren(...liveFailure(error));
    },
  };
}

/** What the accepted column says when it follows the client events of `tenant`:
 *  a job site's are no catalog's (it said "No catalog holds events yet" and Accepted
 *  0 beside their refusals, as if none were stored; then only where they were). */
function ofTenant(tenant, tenants, chosen) {
  const others = tenants.filter((t) => t !== tenant).length;
  return [chosen ? "" : "No catalog holds events: this column follows a tenant's client events. ",
    `Stored in ${tenant}: the latest 100 by create time, then each as it comes (the count ` +
    "is of these). Open one on its tenant's page",
    others ? [`; the other ${others.toLocaleString("en-US")} tenant${others === 1 ? "" : "s"}`,
      " under ", h("a", {href: "#talent"}, "Talent events")] : "", "."];
}

export function render(main, ctx) {
  main.append(h("h2", {}, "Live feed"));
  // A tenant named in the URL, or with no catalog holding events the first tenant:
  // its client events are the accepted ones (they were shown nowhere on the feed).
  const named = ctx.params.get("tenant") || "";
  const tenant = named || (ctx.catalog ? "" : ctx.tenants[0] || "");
  const followed = tenant || ctx.catalog;  // what the accepted column follows
  const heard = news(ctx.signal);
  const pause = pauser(() => { accepted.resume(); refused.resume(); });
  const acceptedHint = () => (tenant ? ofTenant(tenant, ctx.tenants, Boolean(named))
    : ctx.catalog ? `Stored in ${ctx.catalog}: the last 100, then each as it comes (the ` +
      "count is of these; the Catalogs page counts them all). Open one to see it whole."
      : "No catalog holds events yet: send one and it shows here.");
  const accepted = column("accepted", "Accepted", acceptedHint(),
    (n) => heard.note("accepted", n), pause);
  const everywhere = `Refused in ${ctx.projects === "projects/-" ? "every project"
    : ctx.projects}; open one to see why, beside the field.`;
  const refused = column("refused", "Refused", everywhere, (n) => heard.note("refused", n),
    pause);
  // The refusals come after up to 200 accepted events: below them on a phone (the
  // columns stack), after them in the order of Tab everywhere. A way down to them:
  // shown while the columns stack; side by side, once the keyboard reaches it (see
  // console.css).
  const refusedHeading = refused.section.querySelector("h3");
  refusedHeading.setAttribute("tabindex", "-1");
  const jump = h("button", {type: "button", class: "link"}, "Go to the refused requests");
  jump.addEventListener("click", () => {
    refusedHeading.scrollIntoView();
    refusedHeading.focus({preventScroll: true});
  });
  main.append(h("p", {class: "jump"}, jump), pause.element,
    h("div", {class: "columns"}, accepted.section, refused.section), heard.region);
  // The refusals are followed once the events' first page is in: each stream holds
  // one of the browser's six connections to the server, and with two left to a tab
  // (three others open), both streams could take them while a page waited for ever.
  const acceptedPath = tenant ? route`/console/v1/${tenant}/clientEvents`
    : ctx.catalog ? route`/console/v1/${ctx.catalog}/userEvents` : "";
  let accepting = null;
  /** Reads the accepted column afresh (`why`: said after its hint), then its refusals. */
  const followAccepted = (why = "") => {
    accepting?.abort();
    accepting = new AbortController();
    const signal = AbortSignal.any([ctx.signal, accepting.signal]);
    if (why) accepted.clear([acceptedHint(), " ", why]);
    follow(acceptedPath, tenant ? "clientEvents" : "userEvents", {
      signal, onError: accepted.error, byTime: true,
      onListed: () => { accepted.listed(); followRefusals(); },
      onItems: (items) => {  // (none of a follow let go: its page may come after)
        if (signal.aborted) return;
        if (tenant) {
          accepted.add(items, (stored) => clientEventLink(stored, tenant));
        } else {
          items.forEach(remember);
          accepted.add(items, eventLink);
        }
      },
    });
  };
  if (acceptedPath) {
    followAccepted();
    whileStored(acceptedPath, accepted, () => followAccepted(deleted("events")), ctx.signal);
  }
  let following = null;
  let refusedPath = "";
  const followRefusals = (why = "") => {
    following?.abort();
    following = new AbortController();
    const signal = AbortSignal.any([ctx.signal, following.signal]);
    const ofCatalog = followed && sessionStorage.getItem(OF_CATALOG) === "yes";
    refused.clear([ofCatalog ? `Refused requests that named ${followed} (not those whose ` +
      "parent was malformed); open one to see why, beside the field." : everywhere,
      why ? ` ${why}` : ""]);
    refusedPath = route`/console/v1/${ofCatalog ? followed : ctx.projects}/rejections`;
    follow(refusedPath, "rejections", {
      signal, onError: refused.error, onListed: () => refused.listed(),
      // each refusal with those it counts (alike, right after it)
      onItems: (items) => {  // (none of a follow let go: its page may come after)
        if (!signal.aborted) refused.add(items, rejectionItem, (r) => Number(r.repeats || 0) + 1);
      },
    });
  };
  if (followed) {
    const only = h("input", {type: "checkbox", id: "refused-of-catalog",
      checked: sessionStorage.getItem(OF_CATALOG) === "yes"});
    only.addEventListener("change", () => {
      sessionStorage.setItem(OF_CATALOG, only.checked ? "yes" : "no");
      followRefusals();
    });
    refused.section.querySelector("h3").after(h("label", {class: "narrow"}, only,
      ` Only those that named this ${tenant ? "tenant" : "catalog"}`));
  }
  if (!followed) followRefusals();
  whileStored(() => refusedPath, refused, () => followRefusals(deleted("refusals")),
    ctx.signal);
}

/** Said in a column's hint once it was read afresh because what it showed of `what`
 *  ("events", "client events" or "refusals") was deleted. */
export function deleted(what) {
  const how = what === "refusals" ? "a reset, or more refused since than the server keeps"
    : what === "events" ? "a reset, a purge or retention"
    : "a reset";
  return `Read again at ${when(new Date().toISOString())}: the ${what} shown before were ` +
    `deleted (${how}).`;
}

/** Calls `onGone()` when the first item `column` shows (its lowest id) is no longer
 *  stored at `path` (a route, or a function giving it), asked every STILL_STORED_MS
 *  while the tab is seen, until `signal` aborts. */
export function whileStored(path, column, onGone, signal) {
  let asking = false;
  const ask = async () => {
    const id = column.first;
    const at = typeof path === "function" ? path() : path;
    if (asking || id === null || !at || document.hidden) return;
    asking = true;
    try {
      const found = await findById(at, id, {signal, waitMs: FIND_MS, late: false});
      // Nothing in time: none stored from it on, or a server slow to answer (a busy
      // one, or the browser's six connections to it held by other tabs' streams),
      // which emptied the column and said that what it showed was deleted. The list
      // answers however long it takes: gone, if it holds none from it on.
      const gone = found === null || (found === false && !await holdsFrom(at, id, signal));
      // (not when the column started again meanwhile: its first is another's)
      if (gone && !signal.aborted && column.first === id) onGone();
    } catch {
      // the server out of reach, or the key gone: the columns' watches say so
    } finally {
      asking = false;
    }
  };
  const timer = setInterval(ask, STILL_STORED_MS);
  signal.addEventListener("abort", () => clearInterval(timer), {once: true});
}

/** Whether the newest page of the list route `path` holds an item of id `id` or
 *  later. */
async function holdsFrom(path, id, signal) {
  const page = await call(path, {query: {pageSize: 100}, signal});
  const items = Object.values(page).find(Array.isArray) || [];
  return items.some((item) => BigInt(item.id) >= BigInt(id));
}
