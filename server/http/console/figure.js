// A chart on a page: its heading, the drawing (redrawn at any width) and the
// same numbers as a table for a keyboard or a screen reader, built when opened.

import {h} from "./dom.js";
import {responsive} from "./svg.js";

/** `draw(width)` makes the SVG; `rows()` gives [headings, ...rows] for the table.
 *  Returns {element, redraw}. */
export function figure({id, title, draw, rows, signal, before = []}) {
  const box = h("div", {class: "chart-box", id});
  const table = h("div", {class: "table", tabindex: 0, role: "region",
    "aria-label": `${title}: the numbers`});
  const numbers = h("details", {class: "numbers"}, h("summary", {}, "The numbers as a table"),
    table);
  numbers.addEventListener("toggle", () => {
    if (!numbers.open || table.firstChild) return;
    const [headings, ...found] = rows();
    table.append(h("table", {},
      h("thead", {}, h("tr", {}, headings.map((t) => h("th", {scope: "col"}, t)))),
      h("tbody", {}, found.map((cells) => h("tr", {},
        cells.map((cell, i) => h("td", {"data-label": headings[i]}, cell)))))));
  });
  const element = h("figure", {class: "insight"}, h("figcaption", {}, h("h4", {}, title)),
    before, box, numbers);
  return {element, redraw: responsive(box, draw, signal)};
}

/** An AbortSignal that aborts with `parent` or when the returned `abort()` is called. */
export function linked(parent) {
  const controller = new AbortController();
  parent.addEventListener("abort", () => controller.abort(), {once: true});
  return controller;
}
