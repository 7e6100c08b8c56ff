// A table the server sorts and pages (ListProductStats, ListJobStats): a
// column's heading sorts by it (again: the other way), a select does the same
// at a phone's width, and Previous/Next walk the pages.

import {failure, h} from "./dom.js";
import {linked} from "./figure.js";

const PAGE_SIZE = 20;

/** `columns`: [{title, order (an order_by field, or none), cell(item), numeric, about
 *  (what the column holds, its heading's tooltip)}], or a group of counts in one column,
 *  [{title, group: [{title, order, cell(item)}]}]: each count its line, named, in each
 *  cell, and its sort button in the heading; `about`: said below the table.
 *  A column's `class` is its cells'. `tiles`: at a phone's width a row's cells stand
 *  two a line, not one (but the first, a group and a "wide" column's).
 *  `load({orderBy, pageSize, pageToken}, signal)` answers {items, nextPageToken, notes,
 *  empty (what a page of no row says; by default, that the range holds nothing)}
 *  (a page asked for while another loads aborts that one). The
 *  order starts as `orderBy` ("views desc"); `onOrder(orderBy)` hears changes. */
export function statsTable({label, columns, about, load, orderBy, onOrder, signal, tiles}) {
  let [field, direction = ""] = orderBy.split(" ");
  let tokens = [""];  // the token of each page seen; the last is the one shown
  const status = h("div", {role: "status", class: "pages"});
  const notes = h("div", {});
  const body = h("tbody", {});
  const head = h("tr", {});
  const sorter = h("select", {id: `${label}-order`.replace(/\W+/g, "-").toLowerCase()});
  const previous = h("button", {type: "button", class: "previous", disabled: true}, "Previous");
  const next = h("button", {type: "button", class: "next", disabled: true}, "Next");
  const sortable = columns.flatMap((c) => (c.group ? c.group.map((g) => ({...g, numeric: true}))
    : c.order ? [c] : []));
  for (const c of sortable) {
    for (const desc of [true, false]) {
      sorter.append(h("option", {value: `${c.order}${desc ? " desc" : ""}`},
        `${c.title} ${desc ? (c.numeric ? "(most first)" : "(Z to A)")
          : (c.numeric ? "(least first)" : "(A to Z)")}`));
    }
  }

  // Built once and updated in place, so a heading's button keeps the focus.
  const sortButton = (c, numeric) => {
    const arrow = h("span", {"aria-hidden": "true"});
    const button = h("button", {type: "button", class: "sort", "data-order": c.order,
      onclick: () => sort(c.order, c.order === field
        ? (direction ? "" : "desc") : (numeric ? "desc" : ""))}, c.title, arrow);
    return {button, arrow, order: c.order};
  };
  const headings = columns.map((c) => {
    const place = c.group ? "group" : c.numeric ? "number" : null;
    if (c.group) {
      // (a heading of four sort buttons, one a line as the counts in its cells)
      const sorts = c.group.map((g) => sortButton(g, true));
      return {th: h("th", {scope: "col", class: place, title: c.about},
        h("span", {class: "group-title"}, c.title),
        h("ul", {class: "sorts"}, sorts.map((one) => h("li", {}, one.button)))), sorts};
    }
    if (!c.order) return {th: h("th", {scope: "col", class: place, title: c.about}, c.title), sorts: []};
    const one = sortButton(c, c.numeric);
    return {th: h("th", {scope: "col", class: place, title: c.about}, one.button), sorts: [one]};
  });
  head.append(...headings.map((one) => one.th));
  const cellOf = (c, item) => {
    if (!c.group) {
      return h("td", {"data-label": c.title,
        class: [c.numeric ? "number" : "", c.class || ""].join(" ").trim()}, c.cell(item));
    }
    // (each count named beside it: the heading is far above on a long page, and a
    // phone's card has no heading)
    return h("td", {"data-label": c.title, class: "group"}, h("dl", {},
      c.group.map((g) => h("div", {"data-label": g.title},
        h("dt", {}, g.title), h("dd", {class: "number"}, g.cell(item))))));
  };
  let busy = false;
  let loading = null;  // the controller of the page being read

  async function show() {
    for (const {th, sorts} of headings) {
      const on = sorts.some(({order}) => order === field);
      if (on) th.setAttribute("aria-sort", direction ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
      for (const {order, arrow} of sorts) {
        arrow.textContent = order === field ? (direction ? " ▼" : " ▲") : "";
      }
    }
    sorter.value = `${field}${direction ? " desc" : ""}`;
    busy = true;
    loading?.abort();
    loading = linked(signal);
    const mine = loading.signal;
    try {
      const page = await load({orderBy: sorter.value, pageSize: PAGE_SIZE,
        pageToken: tokens.at(-1)}, mine);
      if (mine.aborted) return;  // a newer page is on its way
      body.replaceChildren(...page.items.map((item) => h("tr", {},
        columns.map((c) => cellOf(c, item)))));
      if (!page.items.length) {
        body.append(h("tr", {}, h("td", {colspan: columns.length},
          page.empty || "Nothing in this time range.")));
      }
      status.replaceChildren(`Page ${tokens.length}`);
      notes.replaceChildren(...(page.notes || []).map((note) =>
        h("p", {class: "hint note"}, `Note: ${note}`)));
      next.dataset.token = page.nextPageToken || "";
      // Both set before the focus moves: a disabled button drops the focus, to the
      // other one if that is enabled now (from Previous on page 2, Next was still
      // disabled as on the last page, and the focus fell to the page's body).
      const focused = [previous, next].find((button) => document.activeElement === button);
      previous.disabled = tokens.length === 1;
      next.disabled = !page.nextPageToken;
      if (focused?.disabled) (focused === previous ? next : previous).focus();
    } catch (error) {
      if (!mine.aborted) {
        // (the rows of the range before stood beside the error as if of this one)
        body.replaceChildren();
        notes.replaceChildren();
        status.replaceChildren(failure(error));
      }
    }
    if (!mine.aborted) busy = false;
  }

  function sort(newField, newDirection) {
    [field, direction] = [newField, newDirection];
    tokens = [""];
    onOrder?.(`${field}${direction ? " desc" : ""}`);
    show();
  }

  sorter.addEventListener("change", () => sort(...sorter.value.split(" ")));
  previous.addEventListener("click", () => { if (!busy) { tokens.pop(); show(); } });
  next.addEventListener("click", () => { if (!busy) { tokens.push(next.dataset.token); show(); } });
  const element = h("div", {class: tiles ? "stats tiles" : "stats"},
    h("p", {class: "row sort-choice"}, h("label", {for: sorter.id}, "Sort by"), sorter),
    // (named as the section it is in, "Per product", it was a second landmark alike)
    h("div", {class: "table", tabindex: 0, role: "region", "aria-label": `${label}: the table`},
      h("table", {}, h("thead", {}, head), body)),
    h("p", {class: "row"}, previous, status, next), notes,
    about ? h("p", {class: "hint about"}, about) : null);
  show();
  return {element, reload: () => { tokens = [""]; show(); }};
}
