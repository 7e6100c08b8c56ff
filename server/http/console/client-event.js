// A talent client event as the console's lists show it: the talent page's table and
// the live feed's accepted column.

import {h, when} from "./dom.js";

// Jobs named on a line of a list: an impression names every job of a results page,
// and one of 5,000 filled the talent page's table (each date wrapped on three lines);
// the event opened whole names them all.
const SHOWN_JOBS = 10;

/** The event's type and its jobs (the first SHOWN_JOBS, then how many more): a job
 *  of the tenant by its id (its full name, on
 *  two to five lines a job, said the tenant again each time). A project's default
 *  tenant names a job as talent v4beta1 does too (projects/P/jobs/J), by its id as
 *  well: one job stood there under two names. */
export function what(event, tenant) {
  if (!event.jobEvent) return ["", ""];
  const [, project, , tenantId] = tenant.split("/");
  const own = [`${tenant}/jobs/`, ...(tenantId === "default_tenant" ? [`projects/${project}/jobs/`] : [])];
  const jobs = (event.jobEvent.jobs || []).map((job) => {
    const prefix = own.find((p) => job.startsWith(p));
    return prefix ? job.slice(prefix.length) : job;
  });
  const shown = jobs.length > SHOWN_JOBS
    ? [...jobs.slice(0, SHOWN_JOBS), `and ${(jobs.length - SHOWN_JOBS).toLocaleString("en")} more`]
    : jobs;
  return [event.jobEvent.type || "", shown.join(", ")];
}

/** A one-line summary of a stored client event of `tenant`, linking to the tenant's
 *  page (where its id opens it whole). */
export function clientEventLink(stored, tenant) {
  const e = stored.clientEvent || {};
  const [type, jobs] = what(e, tenant);
  const href = `#talent?${new URLSearchParams({tenant})}`;
  return h("a", {href, class: "event", "data-id": stored.id},
    h("time", {}, when(e.createTime)), " ",
    h("strong", {}, type || "(no job event)"), " ",
    h("span", {}, jobs ? `jobs ${jobs}` : ""), " ",
    h("span", {}, `event ${e.eventId || "(no id)"}`), " ",
    h("span", {class: "tag"}, stored.transport || "TRANSPORT_UNSPECIFIED"));
}
