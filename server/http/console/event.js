// #event/ID?parent=CATALOG: one stored user event, as stored beside as received.

import {findById} from "./api.js";
import {failure, h, shown, when} from "./dom.js";
import {RETAIL_TYPES} from "./funnel-form.js";
import {gist, summary} from "./gist.js";
import {jsonView} from "./json.js";
import {route} from "./names.js";

const seen = new Map();  // id -> StoredUserEvent, from the feed and the search
const KEPT = 2000;  // the latest events remembered (a busy feed runs for hours)

/** Keeps `stored` for its page. */
export function remember(stored) {
  seen.set(stored.id, stored);
  if (seen.size > KEPT) seen.delete(seen.keys().next().value);
}

/** A tag for an event type that is none of Google's, or null: one stored under a slip
 *  ("purchase" for purchase-complete) was accepted and counted by no funnel step, and
 *  nothing on the page said so (--strict-event-types refuses them, as Google does). */
export function unknownType(eventType) {
  if (!eventType || RETAIL_TYPES.includes(eventType)) return null;
  return h("span", {class: "tag warn", title: `Google knows: ${RETAIL_TYPES.join(", ")}`},
    "not a Google type");
}

/** A one-line summary of a stored event, linking to its page. */
export function eventLink(stored) {
  const e = stored.userEvent || {};
  const unknown = unknownType(e.eventType);
  return h("a", {href: eventHref(stored), class: "event", "data-id": stored.id},
    h("time", {}, when(e.eventTime)), " ",
    h("strong", {}, e.eventType || "(no type)"), " ", unknown, unknown && " ",
    // (a search's line showed its visitor, not what was searched for)
    gistOf(e),
    h("span", {class: "visitor", title: "visitor"}, e.visitorId || ""), " ",
    h("span", {class: "tag"}, stored.transport || "TRANSPORT_UNSPECIFIED"),
    stored.joined ? null : h("span", {class: "tag warn"}, "not joined"));
}

/** The few words that tell `e` from others of its type, or nothing. */
function gistOf(e) {
  const words = gist(e);
  return words ? [h("span", {class: "gist"}, words), " "] : null;
}

/** The page of a stored event: its catalog named, so that the link opens it in
 *  another tab, or after a reload, too. */
export function eventHref(stored) {
  return `#event/${stored.id}?${new URLSearchParams({parent: stored.catalog})}`;
}

export async function render(main, ctx) {
  const id = ctx.path;
  const catalog = ctx.params.get("parent") || ctx.catalog;
  if (ctx.params.get("parent")) ctx.adopt(catalog);  // (the header named another catalog)
  const heading = h("h2", {}, `Event ${id}`);
  main.append(heading);
  let stored = seen.get(id);
  const remembered = Boolean(stored);
  if (!stored && catalog && /^[0-9]+$/.test(id)) {
    // read by its id (it was looked for among the newest 5,000 by time only)
    const looking = h("p", {class: "hint"}, "Looking for it…");
    main.append(looking);
    try {
      stored = await findById(route`/console/v1/${catalog}/userEvents`, id, {signal: ctx.signal});
      if (stored) remember(stored);
    } catch (error) {
      looking.remove();
      if (!ctx.signal.aborted) main.append(failure(error));
      return;
    }
    looking.remove();
  }
  if (ctx.signal.aborted) return;
  if (!stored) {
    main.append(h("p", {class: "error"}, `No event ${id} in ${catalog}.`));
    return;
  }
  heading.replaceChildren(...shown(`Event ${id}: ${stored.userEvent?.eventType || "(no type)"}`));
  main.append(h("dl", {class: "facts"},
    h("dt", {}, "Catalog"), h("dd", {}, stored.catalog),
    h("dt", {}, "Received"), h("dd", {}, when(stored.receiveTime) || "before receive times were kept"),
    h("dt", {}, "Came by"), h("dd", {}, stored.transport || "TRANSPORT_UNSPECIFIED"),
    h("dt", {}, "Joined the catalog"), h("dd", {}, stored.joined ? "yes" : "no")));
  // Above the JSON: a purchase of 1,000 lines had its revenue after them all.
  main.append(h("section", {"aria-labelledby": "summary-h", class: "summary"},
    h("h3", {id: "summary-h"}, "Summary"),
    h("dl", {class: "facts"}, summary(stored.userEvent || {}).map(([term, description]) =>
      [h("dt", {}, term), h("dd", {}, description)]))));
  main.append(h("div", {class: "columns"},
    h("section", {"aria-labelledby": "stored-h"}, h("h3", {id: "stored-h"}, "Stored"),
      jsonView(stored.userEvent || {})),
    h("section", {"aria-labelledby": "received-h"}, h("h3", {id: "received-h"}, "Received"),
      stored.receivedEvent ? jsonView(stored.receivedEvent)
        : h("p", {class: "hint"}, stored.joined
          ? "As stored: joining the catalog changed nothing."
          // (not "joining changed nothing" beside "Joined the catalog: no")
          : "As stored: it was not joined (a product it names is not in the catalog's " +
            "default branch), so nothing in it was filled in."))));
  if (remembered && catalog) gone(heading, catalog, id, ctx.signal);
}

/** Says so above an event shown as this tab saw it, once the server does not find
 *  it (within findById's wait): a reset showed its events as "Stored" until the page
 *  was reloaded. */
async function gone(heading, catalog, id, signal) {
  try {
    if (await findById(route`/console/v1/${catalog}/userEvents`, id, {signal})) return;
  } catch {
    return;  // (the server out of reach: said by the pages that read)
  }
  if (signal.aborted) return;
  heading.after(h("p", {class: "error", role: "note"}, `${catalog} no longer holds event ` +
    `${id}, it seems (a reset, a purge or retention deletes events; the server did not ` +
    "find it): what follows is what this tab saw."));
}
