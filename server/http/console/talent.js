// #talent?tenant=...: the client events of a talent tenant, as they arrive.

import {follow} from "./api.js";
import {failure, h, table, when} from "./dom.js";

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
    // (in one order on every page, so that arrow keys step through them)
    [...new Set([...tenants, tenant])].map((t) => h("option", {value: t}, t)));
  chooser.value = tenant;
  chooser.addEventListener("change", () => {
    location.hash = `talent?${new URLSearchParams({tenant: chooser.value})}`;
  });
  const status = h("div", {role: "status"});
  const found = table("Client events",
    ["Created", "Event id", "Request id", "Job event", "Jobs", "Came by"]);
  main.append(h("p", {}, h("label", {for: "tenant"}, "Tenant "), chooser), status,
    found.element);
  follow(`/console/v1/${tenant}/clientEvents`, "clientEvents", {
    signal: ctx.signal,
    onError: (error) => status.replaceChildren(...(error ? [failure(error)] : [])),
    onItems: (items) => {
      for (const stored of items) {
        const e = stored.clientEvent || {};
        const [type, jobs] = what(e);
        found.body.prepend(found.row([when(e.createTime), e.eventId || "", e.requestId || "",
          type, jobs, stored.transport || ""]));
      }
    },
  });
}
