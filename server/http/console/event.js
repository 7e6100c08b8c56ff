// #event/ID: one stored user event, as stored beside as received.

import {listAll} from "./api.js";
import {failure, h, when} from "./dom.js";
import {jsonView} from "./json.js";

const seen = new Map();  // id -> StoredUserEvent, from the feed and the search
const KEPT = 2000;  // the latest events remembered (a busy feed runs for hours)
const SEARCHED = 5000;  // events read to find one the tab has not seen

/** Keeps `stored` for its page. */
export function remember(stored) {
  seen.set(stored.id, stored);
  if (seen.size > KEPT) seen.delete(seen.keys().next().value);
}

/** A one-line summary of a stored event, linking to its page. */
export function eventLink(stored) {
  const e = stored.userEvent || {};
  return h("a", {href: `#event/${stored.id}`, class: "event", "data-id": stored.id},
    h("time", {}, when(e.eventTime)), " ",
    h("strong", {}, e.eventType || "(no type)"), " ",
    h("span", {}, e.visitorId || ""), " ",
    h("span", {class: "tag"}, stored.transport || "TRANSPORT_UNSPECIFIED"),
    stored.joined ? null : h("span", {class: "tag warn"}, "not joined"));
}

export async function render(main, ctx) {
  const id = ctx.path;
  const heading = h("h2", {}, `Event ${id}`);
  main.append(heading);
  let stored = seen.get(id);
  if (!stored && ctx.catalog) {
    main.append(h("p", {class: "hint"}, "Looking for it…"));
    try {
      const found = await listAll(`/console/v1/${ctx.catalog}/userEvents`, "userEvents",
        {limit: SEARCHED, signal: ctx.signal});
      found.forEach(remember);
      stored = seen.get(id);
    } catch (error) {
      if (!ctx.signal.aborted) main.append(failure(error));
      return;
    }
    main.lastChild.remove();
  }
  if (ctx.signal.aborted) return;
  if (!stored) {
    main.append(h("p", {class: "error"}, `No event ${id} among the newest ${SEARCHED} of ${ctx.catalog}.`));
    return;
  }
  heading.textContent = `Event ${id}: ${stored.userEvent?.eventType || "(no type)"}`;
  main.append(h("dl", {class: "facts"},
    h("dt", {}, "Catalog"), h("dd", {}, stored.catalog),
    h("dt", {}, "Received"), h("dd", {}, when(stored.receiveTime) || "before receive times were kept"),
    h("dt", {}, "Came by"), h("dd", {}, stored.transport || "TRANSPORT_UNSPECIFIED"),
    h("dt", {}, "Joined the catalog"), h("dd", {}, stored.joined ? "yes" : "no")));
  main.append(h("div", {class: "columns"},
    h("section", {"aria-labelledby": "stored-h"}, h("h3", {id: "stored-h"}, "Stored"),
      jsonView(stored.userEvent || {})),
    h("section", {"aria-labelledby": "received-h"}, h("h3", {id: "received-h"}, "Received"),
      stored.receivedEvent ? jsonView(stored.receivedEvent)
        : h("p", {class: "hint"}, "As stored: joining the catalog changed nothing."))));
}
