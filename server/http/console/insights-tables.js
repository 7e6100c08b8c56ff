// The columns of the per-product and per-job tables (ListProductStats,
// ListJobStats) and how a page of each is read.

import {call} from "./api.js";
import {h} from "./dom.js";
import {count, counted, money, rateOf} from "./format.js";
import {route} from "./names.js";

const RATE = "the purchase-complete events naming the product over its detail-page-view " +
  "events in the range, a ratio of events, not of visitors (units do not count). It passes " +
  "100% when the product is bought more often than its page is viewed: bought again, or " +
  "with no view tracked (an order sent by the shop's server, a page without the tracker). " +
  "Of the visitors who viewed it, how many then bought it: the funnel above, its steps " +
  "detail-page-view and purchase-complete, Breakdown by product.";

const JOB_RATE = "the job's client events of one type over those of the type before " +
  "it in the range (views over impressions, application starts over views, finishes over " +
  "starts), a ratio of events, not of searches or job seekers. It passes 100% when a job " +
  "is viewed more often than it was shown in results: opened again, or from a link with " +
  "no impression sent. Of the searches that showed a job, how many went on to view it: " +
  "the funnel above, its steps IMPRESSION and VIEW, Breakdown by job.";

/** The table of a catalog's products in `span()`, for statsTable(). */
export function productTable(parent, span) {
  return {
    label: "Per product",
    columns: [
      {title: "Product", order: "product_id", cell: (p) => p.productId},
      {title: "Views", order: "views", numeric: true, cell: (p) => count(p.views)},
      {title: "Add-to-carts", order: "add_to_carts", numeric: true, cell: (p) => count(p.addToCarts)},
      {title: "Purchases", order: "purchases", numeric: true, cell: (p) => count(p.purchases)},
      {title: "Units", order: "units", numeric: true, cell: (p) => count(p.units)},
      // (each purchase's price × quantity, in the product's currency: not the purchases'
      // revenue, which the revenue charts add up, tax and shipping included)
      {title: "Price × units", numeric: true,
        cell: (p) => (p.revenue || []).map((r) => money(r.amount, r.currencyCode)).join(", ")},
      // (titled "Purchases ÷ views", its 350% read as a conversion gone wrong: it divides
      // events, not visitors)
      {title: "Purchase events ÷ view events", order: "view_to_purchase_rate", numeric: true,
        about: RATE, cell: (p) => rateOf(p.viewToPurchaseRate, p.views)},
    ],
    about: `Purchase events ÷ view events: ${RATE}`,
    load: async (query, signal) => {
      const page = await call(route`/insights/v1/${parent}/productStats`,
        {query: {...query, ...span()}, signal});
      const items = page.products || [];
      const empty = items.length || query.pageToken ? "" : await noProduct(parent, span, signal);
      return {items, nextPageToken: page.nextPageToken, notes: page.notes, empty};
    },
  };
}

/** What an empty table of `parent`'s products says when the range holds events
 *  nonetheless, none of the types that name a product (a shop that sends only page
 *  views and searches read "Nothing in this time range." beside its charts of them);
 *  "" when the range holds none. */
async function noProduct(parent, span, signal) {
  let events = 0;
  try {
    const totals = await call(route`/insights/v1/${parent}:computeTotals`,
      {query: {...span(), topQueries: 1}, signal});
    events = Number(totals.eventsRead || 0);
  } catch {
    // (the totals' own section says why they failed: the table says what it read)
  }
  return events ? `${counted(events, "event")} in this time range, none of which names a ` +
    "product: only detail-page-view, add-to-cart and purchase-complete events do." : "";
}

const OUTCOMES = "the job's NOTIFICATION, SENT_CV, INTERVIEW_GRANTED and HIRED client " +
  "events in the range.";

/** The table of a tenant's jobs in `span()`, for statsTable(). */
export function jobTable(parent, span) {
  const n = (field) => (j) => count(j[field]);
  return {
    label: "Per job",
    tiles: true,
    columns: [
      {title: "Job", order: "job", cell: (j) => h("span", {title: j.job}, j.job.split("/").pop())},
      {title: "Impressions", order: "impressions", numeric: true, cell: n("impressions")},
      {title: "Views", order: "views", numeric: true, cell: n("views")},
      {title: "Application starts", order: "application_starts", numeric: true,
        cell: n("applicationStarts")},
      {title: "Application finishes", order: "application_finishes", numeric: true,
        cell: n("applicationFinishes")},
      {title: "Redirects", order: "redirects", numeric: true, cell: n("redirects")},
      {title: "Bookmarks", order: "bookmarks", numeric: true, cell: n("bookmarks")},
      // (a column each, the table ran 218 px past a desktop's width: one column of
      // four lines, each count named)
      {title: "Outcomes", about: OUTCOMES, group: [
        {title: "Notifications", order: "notifications", cell: n("notifications")},
        {title: "CVs sent", order: "sent_cvs", cell: n("sentCvs")},
        {title: "Interviews granted", order: "interviews_granted", cell: n("interviewsGranted")},
        {title: "Hires", order: "hires", cell: n("hires")}]},
      // (titled "View rate", a job of 1 impression and 4 views read "400.0%", a
      // conversion gone wrong: each divides events, as the product's rate does)
      {title: "View events ÷ impressions", order: "view_rate", numeric: true, class: "wide",
        about: JOB_RATE, cell: (j) => rateOf(j.viewRate, j.impressions)},
      {title: "Start events ÷ view events", order: "application_start_rate", numeric: true, class: "wide",
        about: JOB_RATE, cell: (j) => rateOf(j.applicationStartRate, j.views)},
      {title: "Finish events ÷ start events", order: "application_finish_rate",
        numeric: true, class: "wide", about: JOB_RATE, cell: (j) => rateOf(j.applicationFinishRate,
          j.applicationStarts)},
    ],
    about: `The three rates: ${JOB_RATE}`,
    load: async (query, signal) => {
      const page = await call(route`/insights/v1/${parent}/jobStats`,
        {query: {...query, ...span()}, signal});
      const items = page.jobs || [];
      const empty = items.length || query.pageToken || Number(page.eventsRead || 0) ? ""
        : await noJob(parent, span(), signal);
      return {items, nextPageToken: page.nextPageToken, notes: page.notes, empty};
    },
  };
}

// The refusals read to tell why a tenant's job table is empty (one page, the latest).
const REFUSALS_READ = 1000;

/** What an empty table of `parent`'s jobs says when the tenant stored no client event
 *  in `span` but refused some that named it: a job site whose tracker sends profile
 *  events (talent v4beta1's former kind, which Footfall refuses) read "Nothing in this
 *  time range." as if it had sent nothing. Said from the refusals the store keeps
 *  (ListRejections of the tenant); "" when it kept none in the range. */
async function noJob(parent, span, signal) {
  let listed;
  try {
    listed = await call(route`/console/v1/${parent}/rejections`,
      {query: {pageSize: REFUSALS_READ}, signal});
  } catch {
    return "";  // (a key without the role, say: the table says what it read)
  }
  const [from, until] = [span.startTime, span.endTime].map((t) => (t ? Date.parse(t) : null));
  // (a refusal that stands for repeats counts each; it is in the range if its last is)
  const inRange = (r) => {
    const at = Date.parse(r.lastTime || r.time);
    return (from === null || at >= from) && (until === null || at < until);
  };
  const tries = (refusals) => refusals.reduce((n, r) => n + 1 + Number(r.repeats || 0), 0);
  const refused = (listed.rejections || []).filter(inRange);
  const profiles = tries(refused.filter((r) => (r.fieldViolations || [])
    .some((v) => v.field.endsWith(".profile_event"))));
  const others = tries(refused) - profiles;
  if (!profiles && !others) return "";
  const atLeast = listed.nextPageToken ? "at least " : "";
  const were = (n) => (n === 1 ? "was" : "were");
  const said = profiles
    ? [`No job events are stored in this time range: ${atLeast}${counted(profiles, "profile event")} ` +
      `sent to this tenant ${were(profiles)} refused, as Footfall stores job events only ` +
      "(profile events were talent v4beta1's, since taken out of it)" +
      (others ? `, and ${counted(others, "other request")} ${were(others)} refused` : "")]
    : [`No job events are stored in this time range; ${atLeast}${counted(others, "request")} ` +
      `naming this tenant ${were(others)} refused`];
  return [...said, ". ", h("a", {href: `#talent?${new URLSearchParams({tenant: parent})}`},
    "Its talent events page"), " shows each refusal and why."];
}
