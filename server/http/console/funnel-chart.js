// The funnel as a chart: one bar per step, as long as its entrants, with the
// conversion from the previous and the first step and the median time between
// steps. Every number is also a data attribute, as the RPC answered it.

import {count, duration, int, plural, rateOf, seconds} from "./format.js";
import {frame, label, s, seriesClass} from "./svg.js";

const CONDITIONS = [
  ["productId", "product"], ["category", "category"], ["job", "job"],
  ["attributeKey", "attribute"],
];

/** "purchase-complete · product p2 · with a search query" */
export function describe(step) {
  const parts = [step.eventType];
  for (const [field, name] of CONDITIONS) {
    if (!step[field]) continue;
    const value = field === "attributeKey" && step.attributeValue
      ? `${step.attributeKey} = ${step.attributeValue}` : step[field];
    parts.push(`${name} ${field === "job" ? value.split("/").pop() : value}`);
  }
  if (step.searchQueryPresent) parts.push("with a search query");
  return parts.join(" · ");
}

/** The words under a step's bar: its conversions and median time. */
function rates(result, first, narrow, before, start) {
  if (first) return [[s("tspan", {}, "first step")]];
  const previous = [s("tspan", {class: "from-previous"},
    rateOf(result.conversionFromPrevious, before)), " of the previous step"];
  const fromFirst = [s("tspan", {class: "from-first"}, rateOf(result.conversionFromFirst, start)),
    " of the first"];
  const median = result.medianTimeFromPrevious
    ? ["median ", s("tspan", {class: "median"},
      duration(seconds(result.medianTimeFromPrevious))), " after it"] : [];
  if (narrow) return median.length ? [[...previous, ", ", ...fromFirst], median]
    : [[...previous, ", ", ...fromFirst]];
  return [[...previous, " · ", ...fromFirst, ...(median.length ? [" · ", ...median] : [])]];
}

let ruler = null;  // a canvas's 2D context, measuring text as the chart draws it

/** How wide `text` is drawn in the chart's font (13px, bold for a step's name). */
function drawnWidth(text, bold) {
  ruler ||= document.createElement("canvas").getContext("2d");
  ruler.font = `${bold ? "600 " : ""}13px ${getComputedStyle(document.body).fontFamily}`;
  return ruler.measureText(text).width;
}

/** A label cut to `width` pixels (an SVG text never wraps), whole in its title: cut by
 *  its drawn width (a guess of 7.5 px a letter let capitals run past the chart). */
function fitted(x, y, text, width, more) {
  const bold = /\bname\b/.test(more?.class || "");
  if (drawnWidth(text, bold) <= width) return label(x, y, text, "start", more);
  let [shortest, longest] = [0, text.length];  // the longest start that fits with "…"
  while (shortest < longest) {
    const middle = Math.ceil((shortest + longest) / 2);
    if (drawnWidth(`${text.slice(0, middle)}…`, bold) <= width) shortest = middle;
    else longest = middle - 1;
  }
  return label(x, y, `${text.slice(0, shortest)}…`, "start", more, s("title", {}, text));
}

/** The chart of `results` (RunFunnel's steps) at `width` pixels. */
export function funnelChart(results, width) {
  const narrow = width < 520;
  const most = Math.max(1, ...results.map((r) => int(r.entrants)));
  const rows = [];
  let y = 0;
  results.forEach((result, i) => {
    const entrants = int(result.entrants);
    const bar = Math.max(entrants ? 2 : 0, (width - 2) * entrants / most);
    const text = count(result.entrants);
    const inside = bar > text.length * 9 + 16;
    const words = rates(result, i === 0, narrow, int(results[i - 1]?.entrants),
      int(results[0]?.entrants));
    rows.push(s("g", {
      class: "step", "data-step": i, "data-event-type": result.step.eventType,
      "data-entrants": entrants, "data-from-previous": result.conversionFromPrevious || 0,
      "data-from-first": result.conversionFromFirst || 0,
      "data-median": result.medianTimeFromPrevious || "",
    },
    fitted(0, y + 16, `${i + 1}. ${describe(result.step)}`, width, {class: "name"}),
    s("rect", {x: 0, y: y + 24, width: width, height: 26, class: "track", rx: 3}),
    s("rect", {x: 0, y: y + 24, width: bar, height: 26, class: `bar ${seriesClass(i)}`, rx: 3},
      s("title", {}, `${describe(result.step)}: ${text} ${plural(entrants, "entrant")}`)),
    label(inside ? bar - 8 : bar + 8, y + 42, text, inside ? "end" : "start",
      {class: `entrants ${inside ? "on-bar" : ""}`}),
    words.map((line, n) => s("text", {x: 0, y: y + 68 + n * 18, class: "rates"}, line))));
    y += 62 + words.length * 18 + 10;
  });
  const first = int(results[0]?.entrants);
  const last = int(results.at(-1)?.entrants);
  return frame(width, y, `Funnel of ${results.length} steps: ${count(first)} entered, ` +
    `${count(last)} reached the last step`, rows);
}
