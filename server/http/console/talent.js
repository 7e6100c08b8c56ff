// #talent?tenant=...&filter=...: the client events of a talent tenant that a filter
// selects, as they arrive.

import {follow} from "./api.js";
import {what} from "./client-event.js";
import {h, liveFailure, table, when} from "./dom.js";
import {KEPT, deleted, news, pauser, rejectionItem, whileStored} from "./feed.js";
import {shortName} from "./format.js";
import {jsonView} from "./json.js";
import {route} from "./names.js";

const LISTED = 100;  // what follow() lists before it watches
const EXAMPLES = [
  "eventType = VIEW",
  'requestId = "request-1"',
  'createTime > "2026-01-01T00:00:00Z"',
];

export function render(main, ctx) {
  main.append(h("h2", {}, "Talent events"));
  const tenants = ctx.tenants;
  const tenant = ctx.params.get("tenant") || tenants[0] || "";
  if (!tenant) {
    // A job site whose every client event is refused holds no tenant yet: the page
    // said only this, and its first events' reasons were on another page, unnamed.
    main.append(h("p", {class: "hint"}, "No tenant holds client events yet. Client events ",
      "refused are under ", h("a", {href: "#feed"}, "Live feed"), ", each with why."));
    return;
  }
  // (in one order on every page, so that arrow keys step through them)
  const all = [...new Set([...tenants, tenant])];
  const chooser = h("select", {id: "tenant", title: tenant},
    all.map((t) => h("option", {value: t, title: t}, shortName(t, all))));
  chooser.value = tenant;
  const filter = ctx.params.get("filter") || "";
  // (the filter goes with the tenant it was written for: another tenant's jobs differ)
  const hrefOf = (t, f) => `#talent?${new URLSearchParams(f ? {tenant: t, filter: f} : {tenant: t})}`;
  chooser.addEventListener("change", () => {
    location.hash = hrefOf(chooser.value, "");
  });
  const input = h("input", {id: "filter", name: "filter", type: "search", value: filter,
    autocomplete: "off", spellcheck: "false", "aria-describedby": "filter-hint"});
  const form = h("form", {class: "search", role: "search"},
    h("label", {for: "filter"}, "Filter"), input, h("button", {type: "submit"}, "Search"),
    h("p", {id: "filter-hint", class: "hint"}, "For example: ",
      EXAMPLES.map((e, i) => [i ? ", " : "", h("a", {href: hrefOf(tenant, e)}, h("code", {}, e))]),
      "; also job, eventId and createTime <, <=, >=. Empty: every event."));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = hrefOf(tenant, input.value);
  });
  const status = h("div", {role: "status"});
  // Why the lists were read again, when they were (see whileStored).
  const readAgain = h("p", {class: "hint", id: "tenant-read-again", hidden: true});
  // What came after the first pages: said to a screen reader in a sentence every few
  // seconds, and held while the Pause button is pressed (as on the live feed).
  const heard = news(ctx.signal);
  const pause = pauser(() => {
    showEvents(held.events.splice(0));
    showRefusals(held.refusals.splice(0));
  });
  // The event opened from the table, whole: the table shows a few of its fields only
  // (a profile event, the notes, the jobs' full names were nowhere to be seen).
  const opened = h("section", {class: "opened", "aria-labelledby": "opened-h", hidden: true,
    tabindex: -1});
  let openedBy = null;  // the button that opened it, to go back to
  const close = () => {
    opened.hidden = true;
    opened.replaceChildren();
    openedBy?.focus();
  };
  const open = (stored, button) => {
    // (v4beta1's JobEvent.profile, which the v4 event it is stored as cannot hold, in
    // its place: the event as it was written)
    const written = stored.clientEvent || {};
    const e = stored.jobEventProfile ? {...written, jobEvent: {...written.jobEvent,
      profile: stored.jobEventProfile}} : written;
    openedBy = button;
    opened.replaceChildren(
      h("h3", {id: "opened-h"}, `Client event ${e.eventId || stored.id}`),
      h("dl", {class: "facts"},
        h("dt", {}, "Received"), h("dd", {}, when(stored.receiveTime)),
        h("dt", {}, "Came by"), h("dd", {}, stored.transport || "TRANSPORT_UNSPECIFIED")),
      jsonView(e),
      h("button", {type: "button", onclick: close}, "Close"));
    opened.hidden = false;
    opened.focus();
  };
  opened.addEventListener("keydown", (event) => {
    if (event.key === "Escape") close();
  });
  const found = table("Client events",
    ["Created", "Event id", "Request id", "Job event", "Jobs", "Came by"], "", [], [1, 2]);
  // Said once a list's first page is in and empty, until a row comes: a filter that
  // selected nothing (or a tenant without refusals) showed a bare heading, or nothing,
  // as if the page were still reading.
  const noEvents = h("p", {class: "hint", id: "tenant-no-events", hidden: true},
    filter ? "No client event of this tenant matches the filter yet; each one that does "
      + "shows here as it is stored."
      : "No client event of this tenant yet; each one shows here as it is stored.");
  const noRefusals = h("p", {class: "hint", id: "tenant-no-refusals", hidden: true},
    "None yet; each one shows here as it comes.");
  const saidNone = () => {
    noEvents.hidden = !listed.events || failed.events || found.body.children.length > 0;
    noRefusals.hidden = !listed.refusals || failed.refusals || refusedList.children.length > 0;
  };
  // The tenant's refused client events: a job site with several tenants found them
  // only among every project's, on the live feed.
  const refusedList = h("ol", {class: "feed", reversed: true, id: "tenant-refused"});
  const refusedStatus = h("div", {class: "status", role: "status"});
  const refused = h("section", {"aria-labelledby": "tenant-refused-h"},
    h("h3", {id: "tenant-refused-h"}, "Refused requests that named this tenant"),
    h("p", {class: "hint"}, "Open one to see why, beside the field (a request whose parent ",
      "was malformed names no tenant: see the live feed)."), refusedStatus, noRefusals,
    refusedList);
  // (a button, as the live feed's: a link's #fragment would be a page of the console)
  const heading = refused.querySelector("h3");
  heading.setAttribute("tabindex", "-1");
  const jump = h("button", {type: "button", class: "link"}, "Refused requests");
  jump.addEventListener("click", () => {
    heading.scrollIntoView();
    heading.focus({preventScroll: true});
  });
  main.append(h("p", {class: "chooser"}, h("label", {for: "tenant"}, "Tenant "), chooser), form,
    h("p", {class: "hint"}, `The latest ${LISTED} by create time, then each on top as it `,
      `is stored (the ${KEPT} newest kept); jobs of this tenant by their id. `,
      h("a", {href: `#insights?${new URLSearchParams({parent: tenant})}`},
        "Counts over them all: Insights"), "; ",
      h("a", {href: `#feed?${new URLSearchParams({tenant})}`}, "beside every refusal: Live feed"),
      ". Open an event by its id to see it whole. ", jump, " follow them."),
    pause.element, status, readAgain, opened, found.element, noEvents, refused, heard.region);
  const held = {events: [], refusals: []};
  const listed = {events: false, refusals: false};
  const failed = {events: false, refusals: false};  // (said in their status instead)
  // What a resume shows of each at most, the rest dropped while held: a long pause over
  // a busy tenant held every event and refusal that came, and built each at the resume.
  const shown = {events: KEPT, refusals: LISTED};
  // the lowest id each list showed since it was last read (BigInt), and its follow
  const first = {events: null, refusals: null};
  const following = {events: null, refusals: null};
  /** The signal of a new follow of `kind`'s list, the last one let go; with `why`, the
   *  list is emptied first and the page says why. */
  const restart = (kind, why) => {
    following[kind]?.abort();
    following[kind] = new AbortController();
    if (why) {
      const list = kind === "events" ? found.body : refusedList;
      const focused = list.contains(document.activeElement);
      list.replaceChildren();
      held[kind] = [];
      listed[kind] = false;
      first[kind] = null;
      readAgain.textContent = why;
      readAgain.hidden = false;
      saidNone();
      if (focused) main.focus({preventScroll: true});  // (it fell to the page's body)
    }
    return AbortSignal.any([ctx.signal, following[kind].signal]);
  };
  const arrived = (kind, items, show) => {
    for (const item of items) {
      if (first[kind] === null || BigInt(item.id) < first[kind]) first[kind] = BigInt(item.id);
    }
    if (!listed[kind]) return show(items);
    heard.note(kind === "events" ? "accepted" : "refused", items.length);
    if (!pause.paused) return show(items);
    const before = held[kind].length;
    held[kind].push(...items);
    held[kind].splice(0, held[kind].length - shown[kind]);
    // (counted as held are those the resume will show: it said "210 new items held"
    // of 200 kept, and of refusals as many as came, of the 100 that the list shows)
    pause.held(held[kind].length - before);
  };
  const showRefusals = (items) => {
    for (const rejection of items) refusedList.prepend(h("li", {}, rejectionItem(rejection)));
    while (refusedList.children.length > LISTED) refusedList.lastChild.remove();
    saidNone();
  };
  const showEvents = (items) => {
    for (const stored of items) {
      const e = stored.clientEvent || {};
      const [type, jobs] = what(e, tenant);
      const button = h("button", {type: "button", class: "link",
        title: "See the whole event"}, e.eventId || "(no id)");
      button.addEventListener("click", () => open(stored, button));
      found.body.prepend(found.row([when(e.createTime), button, e.requestId || "",
        type, jobs, stored.transport || ""]));
    }
    // (as the live feed keeps its columns: a page left open on a busy tenant grew a
    // row an event, for hours)
    while (found.body.children.length > KEPT) found.body.lastChild.remove();
    saidNone();
  };
  // (once the events' first page is in: each stream holds one of the browser's six
  // connections to the server, as on the live feed)
  const eventsPath = route`/console/v1/${tenant}/clientEvents`;
  const refusalsPath = route`/console/v1/${tenant}/rejections`;
  const followRefusals = (why = "") => {
    const signal = restart("refusals", why);
    follow(refusalsPath, "rejections", {
      signal,
      onError: (error) => {
        refusedStatus.replaceChildren(...liveFailure(error));
        failed.refusals = Boolean(error);
        saidNone();
      },
      onListed: () => { listed.refusals = true; saidNone(); },
      // (none of a follow let go: its page may come after)
      onItems: (items) => signal.aborted || arrived("refusals", items, showRefusals),
    });
  };
  // (byTime: the page is the latest by create time, not by id: the watch is opened
  // first, from now, as the live feed's of user events)
  const followEvents = (why = "") => {
    const signal = restart("events", why);
    follow(eventsPath, "clientEvents", {
      signal, byTime: true, query: filter ? {filter} : {},
      onListed: () => { listed.events = true; saidNone(); followRefusals(); },
      onError: (error) => {
        status.replaceChildren(...liveFailure(error));
        failed.events = Boolean(error);
        saidNone();
      },
      onItems: (items) => signal.aborted || arrived("events", items, showEvents),
    });
  };
  followEvents();
  // (a reset deleted them, and the page went on showing them: see whileStored)
  const firstOf = (kind) => ({get first() {
    return first[kind] === null ? null : String(first[kind]);
  }});
  whileStored(eventsPath, firstOf("events"), () => followEvents(deleted("client events")),
    ctx.signal);
  whileStored(refusalsPath, firstOf("refusals"), () => followRefusals(deleted("refusals")),
    ctx.signal);
}
