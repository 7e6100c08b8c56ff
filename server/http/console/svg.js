// What every chart of ours needs: SVG elements built like dom.js's h(), drawn
// again whenever their box changes width, and y axes with round ticks.

import {visible} from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
// Attributes a person reads (or hears), whose text may be a client's
const READ_ATTRIBUTES = new Set(["aria-label"]);

/** An SVG element: `s("rect", {x: 0, class: "bar"}, s("title", {}, "text"))`; text
 *  with its characters that show nothing as their escapes (see dom.js). */
export function s(tag, attributes = {}, ...children) {
  const element = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    element.setAttribute(name, value === true ? "" : READ_ATTRIBUTES.has(name)
      ? visible(String(value)) : value);
  }
  element.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (typeof c === "string" ? visible(c) : c)));
  return element;
}

/** Calls `draw(width)` (which returns an element) for the width of `box` now
 *  and whenever it changes, until `signal` aborts; the drawing fills `box`.
 *  Returns a function that draws again at the same width. */
export function responsive(box, draw, signal) {
  let width = 0;
  let asked = false;
  // Drawn in the next frame, not in the observer's callback: a drawing that
  // changes the page's height (and so its scrollbar) would resize the box again
  // within the same layout.
  const observer = new ResizeObserver(() => {
    if (asked) return;
    asked = true;
    requestAnimationFrame(() => {
      asked = false;
      const now = Math.floor(box.clientWidth);
      if (!now || now === width || signal.aborted) return;
      width = now;
      box.replaceChildren(draw(now));
    });
  });
  observer.observe(box);
  signal.addEventListener("abort", () => observer.disconnect(), {once: true});
  return () => { if (width) box.replaceChildren(draw(width)); };
}

/** Round tick values from 0 to at least `max` (about `wanted` of them); `whole`: each a
 *  whole number (an axis of counts read "0.25 visitors" of a day with one, and "7.5"
 *  of one with ten). */
export function ticks(max, wanted = 4, whole = false) {
  if (!(max > 0)) return [0, 1];
  const rough = max / wanted;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power)
    .find((m) => m >= rough && (!whole || Number.isInteger(m))) || Math.ceil(rough);
  const found = [];
  for (let v = 0; v < max + step; v += step) found.push(Number(v.toPrecision(12)));
  return found;
}

/** A text label; `anchor` is start, middle or end. */
export const label = (x, y, text, anchor = "start", more = {}, ...children) =>
  s("text", {x, y, "text-anchor": anchor, ...more}, text, ...children);

/** The frame of a chart of `width` by `height` pixels, labelled for screen readers. */
export const frame = (width, height, title, ...children) => s("svg", {
  width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title,
  class: "chart"}, s("title", {}, title), ...children);

/** The class of the `index`-th series (its colour): twelve colours, then the same
 *  again with dashed lines, so that no two of the first 24 look alike. */
export const seriesClass = (index) => `series-${index % 12}${index >= 12 ? " series-again" : ""}`;
