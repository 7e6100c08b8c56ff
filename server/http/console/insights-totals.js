// The catalog's totals over time (ComputeTotals): events per type per hour or
// day, distinct visitors, revenue per day with one chart per currency (amounts
// of two currencies are never added), and the top search queries.

import {call} from "./api.js";
import {failure, h} from "./dom.js";
import {figure} from "./figure.js";
import {count, counted, int, money, percent, plural, utc} from "./format.js";
import {route} from "./names.js";
import {MAX_SLOTS, seriesChart, timeline} from "./series-chart.js";
import {seriesClass} from "./svg.js";

/** The totals of `parent` in `span` ({startTime, endTime}) into `where`. */
export async function showTotals(where, {parent, span, granularity, topQueries, signal}) {
  let answer;
  // What is shown stays until the answer comes (seconds over millions of events), said
  // to be the old one: "per day" charts stood under "Per: hour" as if they were its.
  where.setAttribute("aria-busy", "true");
  where.classList.add("stale");
  const reading = h("p", {class: "hint reading", role: "status"}, "Counting again…");
  where.prepend(reading);
  try {
    answer = await call(route`/insights/v1/${parent}:computeTotals`,
      {query: {...span, granularity, topQueries}, signal});
  } catch (error) {
    if (!signal.aborted) where.replaceChildren(failure(error));
    return;
  } finally {
    reading.remove();
    if (!signal.aborted) {  // (else a newer reading has begun)
      where.removeAttribute("aria-busy");
      where.classList.remove("stale");
    }
  }
  const buckets = answer.buckets || [];
  const hour = granularity === "HOUR";
  const parts = [h("p", {class: "headline"}, h("strong", {id: "distinct-visitors",
    "data-value": int(answer.distinctVisitors)}, count(answer.distinctVisitors)),
  ` ${plural(answer.distinctVisitors, "distinct visitor")}, `,
  h("strong", {id: "events-read"}, count(answer.eventsRead)),
  ` ${plural(answer.eventsRead, "event")} read`)];
  // what the server left out to keep its answer small
  for (const note of answer.notes || []) parts.push(h("p", {class: "hint note"}, `Note: ${note}`));
  if (!buckets.length) {
    parts.push(h("p", {class: "hint"}, "No event in this time range."));
  } else {
    parts.push(...overTime(buckets, hour, signal));
  }
  parts.push(...revenue(answer.revenue || [], signal), queries(answer.topQueries || []));
  where.replaceChildren(...parts);
}

/** The events-per-type chart (a legend of checkboxes shows or hides a type) and
 *  the distinct-visitors chart. */
function overTime(buckets, hour, signal) {
  const {times, sparse} = timeline(buckets.map((b) => b.startTime), hour);
  const at = new Map(times.map((t, i) => [t, i]));
  const totals = new Map();
  const visitors = times.map(() => 0);
  for (const bucket of buckets) {
    const i = at.get(Date.parse(bucket.startTime));
    visitors[i] = int(bucket.distinctVisitors);
    for (const {eventType, count: n} of bucket.eventCounts || []) {
      if (!totals.has(eventType)) totals.set(eventType, times.map(() => 0));
      totals.get(eventType)[i] = int(n);
    }
  }
  const total = (values) => values.reduce((a, b) => a + b, 0);
  const series = [...totals].map(([name, values]) => ({name, values, sum: total(values)}))
    .sort((a, b) => b.sum - a.sum || (a.name < b.name ? -1 : 1))
    .map((one, index) => ({...one, index}));
  const hidden = new Set();
  const unit = hour ? "hour" : "day";
  const legend = h("fieldset", {class: "legend"}, h("legend", {}, "Event types shown"),
    series.map((one) => {
      const id = `type-${one.index}`;
      const box = h("input", {type: "checkbox", id, checked: true, "data-series": one.name});
      box.addEventListener("change", () => {
        if (box.checked) hidden.delete(one.name); else hidden.add(one.name);
        events.redraw();
      });
      return h("span", {class: "field"}, box, h("label", {for: id},
        h("span", {class: `swatch ${seriesClass(one.index)}`, "aria-hidden": "true"}),
        `${one.name} (${count(one.sum)})`));
    }));
  const when = (t) => utc(t, hour);
  const events = figure({
    id: "events-chart", title: `Events per type per ${unit} (UTC)`, signal, before: [legend],
    draw: (width) => seriesChart({title: `Events per type per ${unit}`, times, hour, whole: true,
      series: series.filter((one) => !hidden.has(one.name))}, width),
    rows: () => [[unit, ...series.map((one) => one.name)],
      ...times.map((t, i) => [when(t), ...series.map((one) => count(one.values[i]))])],
  });
  const people = figure({
    id: "visitors-chart", title: `Distinct visitors per ${unit} (UTC)`, signal,
    draw: (width) => seriesChart({title: `Distinct visitors per ${unit}`, times, hour,
      kind: "bar", format: count, whole: true,
      series: [{name: "distinct visitors", values: visitors, index: 0}]}, width),
    rows: () => [[unit, "Distinct visitors"], ...times.map((t, i) => [when(t), count(visitors[i])])],
  });
  const gaps = sparse ? [h("p", {class: "hint", id: "sparse-time"}, `Only the ${unit}s that ` +
    `hold events are drawn: they span more than ${count(MAX_SLOTS)} ${unit}s. ` +
    "Narrow From and Until to see the empty ones.")] : [];
  return [...gaps, events.element, people.element];
}

/** One chart of revenue per day for each currency. */
function revenue(rows, signal) {
  if (!rows.length) return [h("p", {class: "hint"}, "No purchase with a revenue in this time range.")];
  const currencies = [...new Set(rows.map((r) => r.currencyCode))].sort();
  // the same days for every currency, so that the charts line up
  const days = [...new Set(rows.map((r) => r.day))].sort();
  const {times} = timeline(days.map((day) => `${day}T00:00:00Z`), false);
  return currencies.map((currency) => {
    const mine = rows.filter((r) => r.currencyCode === currency);
    const at = new Map(times.map((t, i) => [utc(t), i]));
    const values = times.map(() => 0);
    for (const r of mine) values[at.get(r.day)] = Number(r.revenue || 0);
    const sum = mine.reduce((a, r) => a + Number(r.revenue || 0), 0);
    const bought = mine.reduce((a, r) => a + int(r.purchases), 0);
    return figure({
      id: `revenue-${currency}`, title: `Revenue per day in ${currency} (UTC)`, signal,
      before: [h("p", {class: "headline"}, h("strong", {}, money(sum, currency)), ` from ${counted(bought, "purchase")}`)],
      draw: (width) => seriesChart({title: `Revenue per day in ${currency}`, times, kind: "bar",
        format: (v) => money(v, currency), series: [{name: currency, values, index: 2}]}, width),
      rows: () => [["Day", "Revenue", "Purchases"],
        ...mine.map((r) => [r.day, money(r.revenue, currency), count(r.purchases)])],
    }).element;
  });
}

function queries(found) {
  if (!found.length) return h("p", {class: "hint"}, "No search in this time range.");
  return h("div", {class: "table", tabindex: 0, role: "region", "aria-label": "Top search queries",
    id: "top-queries"}, h("table", {},
    h("caption", {}, "Top search queries"),
    h("thead", {}, h("tr", {}, ["Query", "Searches", "Led to a detail view", "Detail-view rate"]
      .map((t, i) => h("th", {scope: "col", class: i ? "number" : null}, t)))),
    h("tbody", {}, found.map((q) => h("tr", {"data-query": q.query},
      h("td", {"data-label": "Query"}, q.query),
      h("td", {"data-label": "Searches", class: "number"}, count(q.searches)),
      h("td", {"data-label": "Led to a detail view", class: "number"}, count(q.ledToDetailView)),
      h("td", {"data-label": "Detail-view rate", class: "number"},
        percent(int(q.searches) ? int(q.ledToDetailView) / int(q.searches) : 0)))))));
}
