// #events?filter=...: the stored events of the catalog that a filter selects, page by page.

import {call} from "./api.js";
import {failure, h, when} from "./dom.js";
import {remember} from "./event.js";

const EXAMPLES = [
  'eventType = "add-to-cart"',
  'visitorId = "visitor-1" AND eventTime > "2026-01-01T00:00:00Z"',
  "joined = false",
  "transport = PIXEL",
];

export function render(main, ctx) {
  const filter = ctx.params.get("filter") || "";
  const input = h("input", {id: "filter", name: "filter", type: "search", value: filter,
    autocomplete: "off", spellcheck: "false", "aria-describedby": "filter-hint"});
  const form = h("form", {class: "search", role: "search"},
    h("label", {for: "filter"}, "Filter"), input, h("button", {type: "submit"}, "Search"),
    h("p", {id: "filter-hint", class: "hint"}, "For example ",
      EXAMPLES.map((e, i) => [i ? ", " : "", h("code", {}, e)]),
      "; also sessionId, userId and productId. Empty: every event."));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = `events?${new URLSearchParams({filter: input.value})}`;
  });
  const results = h("div", {class: "results"});
  main.append(h("h2", {}, "Events"), form, results);
  if (!ctx.catalog) {
    results.append(h("p", {class: "hint"}, "No catalog holds events yet."));
    return;
  }
  const rows = h("tbody", {});
  const more = h("button", {type: "button", hidden: true}, "More");
  let pageToken = "";
  const load = async () => {
    more.disabled = true;
    try {
      const page = await call(`/console/v1/${ctx.catalog}/userEvents`,
        {query: {filter, pageSize: 50, pageToken}, signal: ctx.signal});
      for (const stored of page.userEvents || []) {
        remember(stored);
        const e = stored.userEvent || {};
        rows.append(h("tr", {},
          h("td", {}, h("a", {href: `#event/${stored.id}`}, when(e.eventTime))),
          h("td", {}, e.eventType || ""), h("td", {}, e.visitorId || ""),
          h("td", {}, e.userInfo?.userId || ""), h("td", {}, stored.transport || ""),
          h("td", {}, stored.joined ? "yes" : "no")));
      }
      pageToken = page.nextPageToken || "";
      more.hidden = !pageToken;
      if (!rows.children.length) results.append(h("p", {class: "hint"}, "No event matches."));
    } catch (error) {
      if (!ctx.signal.aborted) results.append(failure(error));
    }
    more.disabled = false;
  };
  more.addEventListener("click", load);
  results.append(h("div", {class: "table", tabindex: 0, role: "region", "aria-label": "Events found"},
    h("table", {},
      h("thead", {}, h("tr", {}, ["Event time", "Type", "Visitor", "User", "Came by", "Joined"]
        .map((t) => h("th", {scope: "col"}, t)))),
      rows)), more);
  load();
}
