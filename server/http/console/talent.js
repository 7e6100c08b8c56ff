// #talent?tenant=...: the client events of a talent tenant, as they arrive.

import {follow} from "./api.js";
import {failure, h, table, when} from "./dom.js";
import {shortName} from "./format.js";

const LISTED = 100;  // what follow() lists before it watches

/** The event's type and its jobs: a job of the tenant by its id (its full name, on
 *  two to five lines a job, said the tenant again each time). */
function what(event, tenant) {
  if (!event.jobEvent) return ["", ""];
  const own = `${tenant}/jobs/`;
  const jobs = (event.jobEvent.jobs || []).map((job) => (job.startsWith(own) ? job.slice(own.length) : job));
  return [event.jobEvent.type || "", jobs.join(", ")];
}


export function render(main, ctx) {
  main.append(h("h2", {}, "Talent events"));
  const tenants = ctx.tenants;
  const tenant = ctx.params.get("tenant") || tenants[0] || "";
  if (!tenant) {
    main.append(h("p", {class: "hint"}, "No tenant holds client events yet."));
    return;
  }
  // (in one order on every page, so that arrow keys step through them)
  const all = [...new Set([...tenants, tenant])];
  const chooser = h("select", {id: "tenant", title: tenant},
    all.map((t) => h("option", {value: t, title: t}, shortName(t, all))));
  chooser.value = tenant;
  chooser.addEventListener("change", () => {
    location.hash = `talent?${new URLSearchParams({tenant: chooser.value})}`;
  });
  const status = h("div", {role: "status"});
  const found = table("Client events",
    ["Created", "Event id", "Request id", "Job event", "Jobs", "Came by"], "", [], [1, 2]);
  main.append(h("p", {class: "chooser"}, h("label", {for: "tenant"}, "Tenant "), chooser),
    h("p", {class: "hint"}, `The last ${LISTED} stored, then each as it comes, the last `,
      "stored on top; jobs of this tenant by their id. ",
      h("a", {href: `#insights?${new URLSearchParams({parent: tenant})}`},
        "Counts over them all: Insights")),
    status, found.element);
  follow(`/console/v1/${tenant}/clientEvents`, "clientEvents", {
    signal: ctx.signal,
    onError: (error) => status.replaceChildren(...(error ? [failure(error)] : [])),
    onItems: (items) => {
      for (const stored of items) {
        const e = stored.clientEvent || {};
        const [type, jobs] = what(e, tenant);
        found.body.prepend(found.row([when(e.createTime), e.eventId || "", e.requestId || "",
          type, jobs, stored.transport || ""]));
      }
    },
  });
}
