// Numbers over time as a chart: lines (several series) or bars (one), on a UTC
// time axis with every hour or day from the first to the last, empty ones at 0.

import {short, utc} from "./format.js";
import {frame, label, s, seriesClass, ticks} from "./svg.js";

const HEIGHT = 220;
const LEFT = 48;
const BOTTOM = 26;
const TOP = 10;
const MAX_MARKS = 400;  // more buckets than this: lines without a mark per point

// More hours or days than this from the first bucket to the last (an event stored
// with a time in year 1 beside today's), and only the buckets that hold events are
// drawn: every one between would be millions, more than a page can hold.
export const MAX_SLOTS = 5000;

/** The bucket starts (ms) to draw, from the RFC 3339 times of the buckets that hold
 *  something (in order): every hour or day from the first to the last, or, past
 *  MAX_SLOTS of them, those buckets alone (`sparse`). */
export function timeline(present, hour) {
  const step = hour ? 3600e3 : 86400e3;
  const first = Date.parse(present[0]);
  const last = Date.parse(present.at(-1));
  if ((last - first) / step >= MAX_SLOTS) {
    return {times: [...new Set(present.map((t) => Date.parse(t)))], sparse: true};
  }
  const times = [];
  for (let t = first; t <= last; t += step) times.push(t);
  return {times, sparse: false};
}

/** The chart of `series` ([{name, values, index}], one value per time of `times`)
 *  at `width`; `kind` "line" or "bar"; `format(value)` labels a value; `whole`: the
 *  values are counts (the axis's ticks whole numbers). */
export function seriesChart({title, times, series, hour, kind = "line", format = String,
  whole = false}, width) {
  const plot = {left: LEFT, right: width - 12, top: TOP, bottom: HEIGHT - BOTTOM};
  const most = Math.max(0, ...series.flatMap((one) => one.values));
  const axis = ticks(most, 4, whole);
  const top = axis.at(-1);
  const band = (plot.right - plot.left) / Math.max(times.length, 1);
  const x = (i) => plot.left + band * (i + 0.5);
  const y = (v) => plot.bottom - (plot.bottom - plot.top) * v / top;
  const grid = axis.map((v) => [
    s("line", {x1: plot.left, x2: plot.right, y1: y(v), y2: y(v), class: "grid"}),
    label(plot.left - 6, y(v) + 4, short(v), "end", {class: "axis"})]);
  // An hour's label leaves out its year when every time is in one year (a sparse axis
  // may span centuries: then each label says its year).
  const oneYear = !times.length || utc(times[0]).slice(0, 4) === utc(times.at(-1)).slice(0, 4);
  const every = Math.max(1, Math.ceil((hour ? (oneYear ? 96 : 132) : 84) / band));
  const dates = times.map((t, i) => (i % every ? null : label(x(i), HEIGHT - 8,
    hour ? utc(t, true).slice(oneYear ? 5 : 0) : utc(t), "middle", {class: "axis"})));
  // One hour or day of lines is a dot per series, and series of the same count lie
  // on one another (one colour showed of a legend of four): then a bar each, side by side.
  const side = kind === "line" && times.length === 1 && series.length > 1;
  const wide = side ? Math.max(1, Math.min(band * 0.8 / series.length, 48))
    : Math.max(1, Math.min(band * 0.8, 48));
  const marks = series.map((one, k) => {
    const name = {"data-series": one.name, class: `series ${seriesClass(one.index)}`};
    const points = one.values.map((v, i) => ({v, i, at: new Date(times[i]).toISOString()}));
    const tip = (p) => s("title", {}, `${one.name}, ${utc(times[p.i], hour)}: ${format(p.v)}`);
    const data = (p) => ({"data-time": p.at, "data-value": p.v});
    if (kind === "bar" || side) {
      const at = (p) => x(p.i) + (side ? (k - (series.length - 1) / 2) * wide : 0);
      const room = side ? wide : band;
      return s("g", name, points.map((p) => s("rect", {
        x: at(p) - wide / 2, y: y(p.v), width: wide, height: plot.bottom - y(p.v),
        class: "bar", ...data(p)}, tip(p))),
      points.map((p) => (room > format(p.v).length * 7 + 4 && p.v ? label(at(p), y(p.v) - 4,
        format(p.v), "middle", {class: "value"}) : null)));
    }
    const path = points.map((p) => `${p.i ? "L" : "M"}${x(p.i).toFixed(1)},${y(p.v).toFixed(1)}`);
    return s("g", name, s("path", {d: path.join(""), class: "line"}),
      times.length <= MAX_MARKS ? points.map((p) => s("circle", {
        cx: x(p.i), cy: y(p.v), r: 3, class: "point", ...data(p)}, tip(p))) : null);
  });
  return frame(width, HEIGHT, title, grid,
    s("line", {x1: plot.left, x2: plot.right, y1: plot.bottom, y2: plot.bottom, class: "axis-line"}),
    dates, marks);
}
