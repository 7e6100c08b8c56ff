// #talent?tenant=...: the client events of a talent tenant, as they arrive.

import {follow} from "./api.js";
import {failure, h, when} from "./dom.js";

function what(event) {
  if (event.jobEvent) return [event.jobEvent.type || "", (event.jobEvent.jobs || []).join(", ")];
  return ["", ""];
}

export function render(main, ctx) {
  main.append(h("h2", {}, "Talent events"));
  const tenants = ctx.tenants;
  const tenant = ctx.params.get("tenant") || tenants[0] || "";
  if (!tenant) {
    main.append(h("p", {class: "hint"}, "No tenant holds client events yet."));
    return;
  }
  const chooser = h("select", {id: "tenant"},
    [...new Set([tenant, ...tenants])].map((t) => h("option", {value: t}, t)));
  chooser.value = tenant;
  chooser.addEventListener("change", () => {
    location.hash = `talent?${new URLSearchParams({tenant: chooser.value})}`;
  });
  const status = h("div", {role: "status"});
  const rows = h("tbody", {});
  main.append(h("p", {}, h("label", {for: "tenant"}, "Tenant "), chooser), status,
    h("div", {class: "table", tabindex: 0, role: "region", "aria-label": "Client events"},
      h("table", {}, h("thead", {}, h("tr", {},
        ["Created", "Event id", "Request id", "Job event", "Jobs", "Came by"]
          .map((t) => h("th", {scope: "col"}, t)))), rows)));
  follow(`/console/v1/${tenant}/clientEvents`, "clientEvents", {
    signal: ctx.signal,
    onError: (error) => status.replaceChildren(...(error ? [failure(error)] : [])),
    onItems: (items) => {
      for (const stored of items) {
        const e = stored.clientEvent || {};
        const [type, jobs] = what(e);
        rows.prepend(h("tr", {}, h("td", {}, when(e.createTime)), h("td", {}, e.eventId || ""),
          h("td", {}, e.requestId || ""), h("td", {}, type), h("td", {}, jobs),
          h("td", {}, stored.transport || "")));
      }
    },
  });
}
