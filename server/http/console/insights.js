// #insights?parent=...: what the events of a catalog or a tenant say, from the
// public footfall.insights.v1 routes: a funnel (its steps edited here), totals
// over time (catalogs), and the per-product or per-job table. What is asked is
// kept in the URL, so a link shows the same question.

import {call} from "./api.js";
import {failure, h} from "./dom.js";
import {figure, linked} from "./figure.js";
import {count, counted, duration, int, percent, rateOf, seconds, shortName} from "./format.js";
import {describe, funnelChart} from "./funnel-chart.js";
import {funnelForm} from "./funnel-form.js";
import {showTotals} from "./insights-totals.js";
import {jobTable, productTable} from "./insights-tables.js";
import {route} from "./names.js";
import {statsTable} from "./stats-table.js";

const GROUPS_SHOWN = 200;

/** The funnel saved in the URL; {} (the default funnel) when there is none or it
 *  is not JSON. */
function parsed(text) {
  try {
    return JSON.parse(text || "{}") || {};
  } catch {
    return {};
  }
}

/** "2024-03-01T10:00" (a datetime-local input, read as UTC) as RFC 3339, and back. */
const toTime = (local) => (local ? `${`${local}:00`.slice(0, 19)}Z` : undefined);
const fromTime = (rfc3339) => (rfc3339 ? rfc3339.slice(0, 16) : "");

function dataSets(ctx) {
  const saved = ctx.params.get("parent") || "";
  // What the URL names is read, and a catalog it names becomes the header's (a shared
  // link opened the header's first catalog); choosing another in the header rewrites
  // the URL (app.js followChoice).
  if (saved && !saved.includes("/tenants/")) ctx.adopt(saved);
  const catalog = saved && !saved.includes("/tenants/") ? saved : ctx.catalog;
  const parent = saved || catalog || ctx.tenants[0] || "";
  const catalogs = ctx.catalogs.map((c) => c.name);
  return {parent,
    choices: [...new Set([catalog, ...catalogs, ...ctx.tenants, parent].filter(Boolean))]};
}

export function render(main, ctx) {
  main.append(h("h2", {}, "Insights"));
  const {parent, choices} = dataSets(ctx);
  if (!parent) {
    main.append(h("p", {class: "hint"}, "No catalog or tenant holds events yet."));
    return;
  }
  const retail = !parent.includes("/tenants/");
  const params = new URLSearchParams(ctx.params);
  params.set("parent", parent);
  const save = () => history.replaceState(null, "", `#insights?${params}`);
  save();

  const chooser = h("select", {id: "data-set", title: parent},
    choices.map((c) => h("option", {value: c, title: c}, shortName(c, choices))));
  chooser.value = parent;
  chooser.addEventListener("change", () => {
    location.hash = `insights?${new URLSearchParams({parent: chooser.value})}`;
  });
  const start = h("input", {id: "start", type: "datetime-local", value: fromTime(params.get("start"))});
  const end = h("input", {id: "end", type: "datetime-local", value: fromTime(params.get("end"))});
  const scope = h("form", {class: "row scope", "aria-label": "What to read"},
    h("span", {class: "field"}, h("label", {for: "data-set"}, retail ? "Catalog" : "Tenant"), chooser),
    h("span", {class: "field"}, h("label", {for: "start"}, "From (UTC)"), start),
    h("span", {class: "field"}, h("label", {for: "end"}, "Until (UTC)"), end),
    h("button", {type: "submit"}, "Apply"));
  // The range applied (Apply), not what the inputs hold: changing "Per" drew a range
  // typed but not applied, beside a funnel and a table of the one applied.
  const span = () => ({startTime: params.get("start") || undefined,
    endTime: params.get("end") || undefined});
  const rangeError = h("p", {class: "error", role: "alert", hidden: true});
  const funnelArea = h("div", {class: "funnel-result", "aria-live": "polite"});
  const saved = parsed(params.get("funnel"));
  const form = funnelForm({retail, saved, onRun: () => runFunnel()});
  const sections = [h("section", {"aria-labelledby": "funnel-h", id: "funnel"},
    h("h3", {id: "funnel-h"}, retail ? "Funnel" : "Funnel of job events"), form.element,
    funnelArea)];

  let funnelRun = null;
  async function runFunnel() {
    funnelRun?.abort();
    funnelRun = linked(ctx.signal);
    const {signal} = funnelRun;
    const question = form.question();
    params.set("funnel", JSON.stringify(question));
    save();
    funnelArea.replaceChildren(h("p", {class: "hint"}, "Counting…"));
    try {
      const answer = await call(route`/insights/v1/${parent}:runFunnel`,
        {method: "POST", body: {...question, ...span()}, signal});
      funnelArea.replaceChildren(...funnelResult(answer, question, retail, signal));
    } catch (error) {
      if (!signal.aborted) funnelArea.replaceChildren(failure(error));
    }
  }

  let totalsRun = null;
  const totalsArea = h("div", {class: "totals"});
  const granularity = h("select", {id: "granularity"}, h("option", {value: "DAY"}, "day"),
    h("option", {value: "HOUR"}, "hour"));
  granularity.value = params.get("granularity") || "DAY";
  const runTotals = () => {
    totalsRun?.abort();
    totalsRun = linked(ctx.signal);
    params.set("granularity", granularity.value);
    save();
    showTotals(totalsArea, {parent, span: span(), granularity: granularity.value,
      topQueries: 10, signal: totalsRun.signal});
  };
  granularity.addEventListener("change", runTotals);
  if (retail) {
    sections.push(h("section", {"aria-labelledby": "totals-h", id: "totals"},
      h("h3", {id: "totals-h"}, "Over time"),
      h("p", {class: "row"}, h("label", {for: "granularity"}, "Per"), granularity), totalsArea));
  } else {
    sections.push(h("p", {class: "hint"}, "Totals over time are answered for catalogs only."));
  }

  const table = statsTable({...(retail ? productTable : jobTable)(parent, span),
    orderBy: params.get("order") || (retail ? "views desc" : "impressions desc"),
    onOrder: (order) => { params.set("order", order); save(); }, signal: ctx.signal});
  sections.push(h("section", {"aria-labelledby": "table-h", id: retail ? "products" : "jobs"},
    h("h3", {id: "table-h"}, retail ? "Per product" : "Per job"), table.element));

  scope.addEventListener("submit", (e) => {
    e.preventDefault();
    // (said once, here: each of the three answers said it again, as INVALID_ARGUMENT)
    const wrong = start.value && end.value && toTime(end.value) <= toTime(start.value);
    rangeError.hidden = !wrong;
    rangeError.textContent = wrong ? "“Until” must come after “From”: nothing was read again." : "";
    if (wrong) {
      end.focus();
      return;
    }
    for (const [name, input] of [["start", start], ["end", end]]) {
      if (input.value) params.set(name, toTime(input.value)); else params.delete(name);
    }
    save();
    runFunnel();
    if (retail) runTotals();
    table.reload();
  });
  main.append(scope, rangeError, ...sections);
  runFunnel();
  if (retail) runTotals();
}

const ENTRANTS = {VISITOR: "visitor", USER: "user", SESSION: "session",
  REQUEST: "search request", JOB: "job"};

/** The funnel's chart, its notes and, with a breakdown, a table of its groups. */
function funnelResult(answer, question, retail, signal) {
  const steps = answer.steps || [];
  const chart = figure({
    id: "funnel-chart", title: "Entrants per step", signal,
    draw: (width) => funnelChart(steps, width),
    rows: () => [["Step", "Entrants", "Of the previous", "Of the first", "Median time after the previous"],
      ...steps.map((s, i) => [`${i + 1}. ${describe(s.step)}`, count(s.entrants),
        rateOf(s.conversionFromPrevious, steps[i - 1]?.entrants ?? s.entrants),
        rateOf(s.conversionFromFirst, steps[0].entrants),
        duration(seconds(s.medianTimeFromPrevious))])],
  });
  const parts = [chart.element, h("p", {class: "hint"}, `${counted(answer.eventsRead, "event")} read.`)];
  // (a shop's first funnel from home-page-view showed 1 purchase of its 19: buyers who
  // came in by a search or a product page never entered it, and nothing said why)
  const first = question.steps[0];
  if (first) {
    const each = ENTRANTS[question.countBy] || "entrant";
    parts.push(h("p", {class: "hint", id: "funnel-entry"}, `Only a ${each} with an ` +
      `event of step 1 (${describe(first)}) in the range enters: one that began elsewhere is not ` +
      "counted at any step, however far it went. Start the funnel at another step to " +
      "count those."));
  }
  for (const note of answer.notes || []) parts.push(h("p", {class: "hint note"}, `Note: ${note}`));
  const groups = answer.groups || [];
  if (question.breakdown) parts.push(groupTable(groups, question, retail));
  return parts;
}

function groupTable(groups, question, retail) {
  const what = question.breakdown === "BY_DAY" ? "Day" : retail ? "Product" : "Job";
  if (!groups.length) return h("p", {class: "hint"}, "No group: no entrant.");
  const headings = [what, ...question.steps.map((s, i) => `${i + 1}. ${s.eventType}`)];
  const shown = groups.slice(0, GROUPS_SHOWN);
  return h("div", {}, h("div", {class: "table", tabindex: 0, role: "region", id: "funnel-groups",
    "aria-label": `The funnel by ${what.toLowerCase()}`}, h("table", {},
    h("caption", {}, `By ${what.toLowerCase()}: entrants (of the first step)`),
    h("thead", {}, h("tr", {}, headings.map((t, i) => h("th", {scope: "col",
      class: i ? "number" : null}, t)))),
    h("tbody", {}, shown.map((g) => h("tr", {"data-key": g.key},
      h("td", {"data-label": what, title: g.key}, g.key.split("/").pop()),
      (g.steps || []).map((s, i) => h("td", {"data-label": headings[i + 1], class: "number",
        "data-entrants": int(s.entrants)},
      `${count(s.entrants)} (${percent(s.conversionFromFirst)})`))))))),
  groups.length > shown.length
    ? h("p", {class: "hint"}, `${count(groups.length - shown.length)} more groups not shown.`)
    : null);
}
