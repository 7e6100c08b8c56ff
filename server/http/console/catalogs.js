// #catalogs: the catalogs and tenants that hold events, in every project the key reads,
// a page at a time (the catalogs by name, then the tenants).

import {call} from "./api.js";
import {h, paged, table, when} from "./dom.js";
import {count} from "./format.js";
import {route} from "./names.js";

export function render(main, ctx) {
  main.append(h("h2", {}, "Catalogs and tenants"));
  const headings = ["Name", "Events", "Latest event time", "Latest received"];
  const chooseButton = (name) => h("button", {type: "button", class: "link",
    onclick: () => { ctx.choose(name); location.hash = "feed"; }}, name);
  const tenantLink = (name) => h("a", {href: `#talent?${new URLSearchParams({tenant: name})}`}, name);
  const lists = [
    {field: "catalogs", open: chooseButton, none: "No catalog holds events or products yet.",
      list: table("Catalogs", headings, "Catalogs (choose one to watch it)", [1])},
    {field: "tenants", open: tenantLink, none: "No tenant holds client events yet.",
      list: table("Tenants", headings, "Tenants", [1])},
  ];
  const slots = lists.map(({list}) => h("div", {}, list.element));
  const results = h("div", {});
  const more = paged(async (pageToken) => {
    const page = await call(route`/console/v1/${ctx.projects}/catalogs`,
      {query: {pageToken}, signal: ctx.signal});
    lists.forEach(({field, open, none, list}, i) => {
      list.body.append(...(page[field] || []).map((set) => list.row([open(set.name),
        count(set.eventCount), when(set.lastEventTime), when(set.lastReceiveTime)])));
      const empty = !list.body.children.length;
      if (empty && !page.nextPageToken) slots[i].replaceChildren(h("p", {class: "hint"}, none));
      else list.element.hidden = empty;
    });
    return page.nextPageToken || "";
  }, ctx.signal, results);
  main.append(...slots, more, results);
}
