// #events?filter=...: the stored events of the catalog that a filter selects, page by page.

import {call} from "./api.js";
import {failure, h, noCatalog, paged, table, when} from "./dom.js";
import {counted} from "./format.js";
import {eventHref, remember, unknownType} from "./event.js";
import {gist} from "./gist.js";
import {route} from "./names.js";

const EXAMPLES = [
  'eventType = "add-to-cart"',
  'visitorId = "visitor-1" AND eventTime > "2026-01-01T00:00:00Z"',
  "joined = false",
  "transport = PIXEL",
];

export function render(main, ctx) {
  // (a link naming its catalog opens it: the header's first catalog was searched instead)
  const named = ctx.params.get("parent");
  const catalog = named && !named.includes("/tenants/") ? named : ctx.catalog;
  if (catalog !== ctx.catalog) ctx.adopt(catalog);
  const filter = ctx.params.get("filter") || "";
  const input = h("input", {id: "filter", name: "filter", type: "search", value: filter,
    autocomplete: "off", spellcheck: "false", "aria-describedby": "filter-hint"});
  const form = h("form", {class: "search", role: "search"},
    h("label", {for: "filter"}, "Filter"), input, h("button", {type: "submit"}, "Search"),
    h("p", {id: "filter-hint", class: "hint"}, "For example: ",
      EXAMPLES.map((e, i) => [i ? ", " : "",
        h("a", {href: `#events?${new URLSearchParams({filter: e})}`}, h("code", {}, e))]),
      "; also sessionId, userId and productId. Empty: every event."));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = `events?${new URLSearchParams({filter: input.value})}`;
  });
  const results = h("div", {class: "results"});
  main.append(h("h2", {}, "Events"), form, results);
  if (!catalog) {
    results.append(noCatalog(ctx.tenants));
    return;
  }
  // (About: what the feed's line says of it, a search's query, a purchase's revenue)
  const found = table("Events found",
    ["Event time", "Type", "About", "Visitor", "User", "Came by", "Joined"], "", [], [3, 4]);
  found.element.hidden = true;  // (until rows come: headings over an error said nothing)
  const more = paged(async (pageToken) => {
    // A call looks through events for about a tenth of a second: a filter that few
    // match answers short (even empty) pages with a token, followed here until 50 are
    // shown.
    let shown = 0;
    do {
      const page = await call(route`/console/v1/${catalog}/userEvents`,
        {query: {filter, pageSize: 50 - shown, pageToken}, signal: ctx.signal});
      for (const stored of page.userEvents || []) {
        remember(stored);
        const e = stored.userEvent || {};
        const unknown = unknownType(e.eventType);
        found.body.append(found.row([
          h("a", {href: eventHref(stored)}, when(e.eventTime)),
          h("span", {}, e.eventType || "", unknown && " ", unknown), gist(e),
          e.visitorId || "", e.userInfo?.userId || "", stored.transport || "",
          stored.joined ? "yes" : "no"]));
        shown += 1;
      }
      pageToken = page.nextPageToken || "";
    } while (pageToken && shown < 50);
    // (no rows: no table, only the headings above the words that say so)
    found.element.hidden = !found.body.children.length;
    if (!found.body.children.length) results.append(h("p", {class: "hint"}, "No event matches."));
    return pageToken;
  }, ctx.signal, results);
  // How many match, asked for (a count reads every event the filter may select:
  // seconds over millions, so not with each page).
  const tally = h("span", {role: "status", id: "events-counted"});
  const countButton = h("button", {type: "button", id: "count-events"}, "Count them");
  countButton.addEventListener("click", async () => {
    countButton.disabled = true;
    tally.replaceChildren("Counting…");
    try {
      const answer = await call(route`/console/v1/${catalog}/userEvents:count`,
        {query: {filter}, signal: ctx.signal});
      const one = Number(answer.count || 0) === 1;
      tally.replaceChildren(`${counted(answer.count, "event")} ` +
        `${filter ? (one ? "matches" : "match") : "stored"}.`);
    } catch (error) {
      if (!ctx.signal.aborted) tally.replaceChildren(failure(error));
    }
    countButton.disabled = false;
  });
  results.append(h("p", {class: "row"}, countButton, tally), found.element, more);
}
