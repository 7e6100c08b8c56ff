// A table the server sorts and pages (ListProductStats, ListJobStats): a
// column's heading sorts by it (again: the other way), a select does the same
// at a phone's width, and Previous/Next walk the pages.

import {failure, h} from "./dom.js";
import {linked} from "./figure.js";

const PAGE_SIZE = 20;

/** `columns`: [{title, order (an order_by field, or none), cell(item), numeric, about
 *  (what the column holds, its heading's tooltip)}]; `about`: said below the table.
 *  `load({orderBy, pageSize, pageToken}, signal)` answers {items, nextPageToken, notes}
 *  (a page asked for while another loads aborts that one). The
 *  order starts as `orderBy` ("views desc"); `onOrder(orderBy)` hears changes. */
export function statsTable({label, columns, about, load, orderBy, onOrder, signal}) {
  let [field, direction = ""] = orderBy.split(" ");
  let tokens = [""];  // the token of each page seen; the last is the one shown
  const status = h("div", {role: "status", class: "pages"});
  const notes = h("div", {});
  const body = h("tbody", {});
  const head = h("tr", {});
  const sorter = h("select", {id: `${label}-order`.replace(/\W+/g, "-").toLowerCase()});
  const previous = h("button", {type: "button", class: "previous", disabled: true}, "Previous");
  const next = h("button", {type: "button", class: "next", disabled: true}, "Next");
  const sortable = columns.filter((c) => c.order);
  for (const c of sortable) {
    for (const desc of [true, false]) {
      sorter.append(h("option", {value: `${c.order}${desc ? " desc" : ""}`},
        `${c.title} ${desc ? (c.numeric ? "(most first)" : "(Z to A)")
          : (c.numeric ? "(least first)" : "(A to Z)")}`));
    }
  }

  // Built once and updated in place, so a heading's button keeps the focus.
  const headings = columns.map((c) => {
    const place = c.numeric ? "number" : null;
    if (!c.order) return {th: h("th", {scope: "col", class: place, title: c.about}, c.title)};
    const arrow = h("span", {"aria-hidden": "true"});
    const th = h("th", {scope: "col", class: place, title: c.about}, h("button", {
      type: "button", class: "sort", "data-order": c.order,
      onclick: () => sort(c.order, c.order === field
        ? (direction ? "" : "desc") : (c.numeric ? "desc" : ""))}, c.title, arrow));
    return {th, arrow, order: c.order};
  });
  head.append(...headings.map((one) => one.th));
  let busy = false;
  let loading = null;  // the controller of the page being read

  async function show() {
    for (const {th, arrow, order} of headings) {
      if (!order) continue;
      const on = order === field;
      if (on) th.setAttribute("aria-sort", direction ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
      arrow.textContent = on ? (direction ? " ▼" : " ▲") : "";
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
        columns.map((c) => h("td", {"data-label": c.title, class: c.numeric ? "number" : ""},
          c.cell(item))))));
      if (!page.items.length) {
        body.append(h("tr", {}, h("td", {colspan: columns.length}, "Nothing in this time range.")));
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
  const element = h("div", {class: "stats"},
    h("p", {class: "row sort-choice"}, h("label", {for: sorter.id}, "Sort by"), sorter),
    // (named as the section it is in, "Per product", it was a second landmark alike)
    h("div", {class: "table", tabindex: 0, role: "region", "aria-label": `${label}: the table`},
      h("table", {}, h("thead", {}, head), body)),
    h("p", {class: "row"}, previous, status, next), notes,
    about ? h("p", {class: "hint about"}, about) : null);
  show();
  return {element, reload: () => { tokens = [""]; show(); }};
}
