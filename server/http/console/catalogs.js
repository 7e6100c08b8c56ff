// #catalogs: the catalogs and tenants that hold events, in every project the key reads.

import {call} from "./api.js";
import {failure, h, table, when} from "./dom.js";

export async function render(main, ctx) {
  main.append(h("h2", {}, "Catalogs and tenants"));
  let sets;
  try {
    sets = await call(`/console/v1/${ctx.projects}/catalogs`, {signal: ctx.signal});
  } catch (error) {
    if (!ctx.signal.aborted) main.append(failure(error));
    return;
  }
  const row = (set, open) => [open(set.name), set.eventCount || "0", when(set.lastEventTime),
    when(set.lastReceiveTime)];
  const headings = ["Name", "Events", "Latest event time", "Latest received"];
  const chooseButton = (name) => h("button", {type: "button", class: "link",
    onclick: () => { ctx.choose(name); location.hash = "feed"; }}, name);
  const tenantLink = (name) => h("a", {href: `#talent?${new URLSearchParams({tenant: name})}`}, name);
  const shown = (label, caption, found, open, none) => {
    if (!found?.length) return h("p", {class: "hint"}, none);
    const list = table(label, headings, caption);
    list.body.append(...found.map((set) => list.row(row(set, open))));
    return list.element;
  };
  main.append(
    shown("Catalogs", "Catalogs (choose one to watch it)", sets.catalogs, chooseButton,
      "No catalog holds events yet."),
    shown("Tenants", "Tenants", sets.tenants, tenantLink, "No tenant holds client events yet."));
}
