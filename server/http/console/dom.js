// Building the DOM without innerHTML: what a server or a client sent is text, never markup.

import {unanswered} from "./api.js";

// Characters that show nothing yet change what is seen: bidirectional embeddings,
// overrides, isolates and marks turn the text around them (a purchase of a product
// id holding U+202E, "sku\u202e1" ×2, read "sku2× 1"); zero-width characters and
// controls make two ids look alike ("visitor-1\u200b" is not "visitor-1"). In what
// the console shows they are written as their JSON escapes. (Tab and line feed show
// as white space; ZWJ and ZWNJ join letters and emoji, and are left as they are.)
const HIDDEN = String.raw`\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e` +
  String.raw`\u2060-\u2064\u2066-\u2069\ufeff`;
const HAS_HIDDEN = new RegExp(`[${HIDDEN}]`);
const EACH_HIDDEN = new RegExp(`([${HIDDEN}])`, "g");
// Attributes a person reads (or hears), whose text is a client's too
const READ_ATTRIBUTES = new Set(["title", "aria-label"]);

const escaped = (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/** `text` with the characters that show nothing written as their escapes (for an
 *  attribute, or an SVG text, where no mark can show them). */
export const visible = (text) => text.replace(EACH_HIDDEN, escaped);

/** `text` as what to append: itself, or with each character that shows nothing as
 *  its escape, marked (a client may have sent "\\u202e" as six characters). */
export function shown(text) {
  if (!HAS_HIDDEN.test(text)) return [text];
  return text.split(EACH_HIDDEN).map((part, i) => (i % 2 === 0 ? part
    : h("span", {class: "escape", title: `U+${part.charCodeAt(0).toString(16).toUpperCase()
      .padStart(4, "0")}: a character that shows nothing, or turns the text around it`},
    escaped(part)))).filter((part) => part !== "");
}

/** An element: `h("a", {href: "#x", class: "c"}, "text", child)`. Attributes
 *  starting with "on" are listeners; false and null attributes are left out. Text
 *  is shown as it is, characters that show nothing as their escapes (`shown`). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (READ_ATTRIBUTES.has(name)) element.setAttribute(name, visible(String(value)));
    else element.setAttribute(name, value === true ? "" : value);
  }
  element.append(...children.flat(Infinity).flatMap((c) => (typeof c === "string" ? shown(c)
    : c === null || c === undefined || c === false ? [] : [c])));
  return element;
}

/** "2026-12-01 10:23:12" in the browser's time zone, from an RFC 3339 time. */
export function when(rfc3339) {
  if (!rfc3339) return "";
  // In UTC, said so (the Z), as the insights and the filters read times: the browser's
  // own zone showed 1999-12-31T23:59:59Z as "2000-01-01 05:29:59" in Kolkata, unlabelled;
  // and the year in four digits (year 1 was "1-01-01").
  const date = new Date(rfc3339);
  const pad = (n, width = 2) => String(n).padStart(width, "0");
  return `${pad(date.getUTCFullYear(), 4)}-${pad(date.getUTCMonth() + 1)}-` +
    `${pad(date.getUTCDate())} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:` +
    `${pad(date.getUTCSeconds())}Z`;
}

/** What a page of a catalog (events, operations, products) says with no catalog
 *  holding events or products: and, of a job site, where its `tenants`' client events
 *  are (it said only "No catalog holds events or products yet", with them stored). */
export function noCatalog(tenants) {
  const n = tenants.length;
  return h("p", {class: "hint"}, "No catalog holds events or products yet.", n
    ? [` The client events of ${n.toLocaleString("en-US")} talent tenant${n === 1 ? " are" : "s are"}`,
      " under ", h("a", {href: "#talent"}, "Talent events"), "."] : "");
}

/** A paragraph saying what went wrong, for a page or a column. */
export function failure(error) {
  const code = error.code ? `${error.code}: ` : "";
  return h("p", {class: "error", role: "alert"}, code + error.message);
}

/** What a list that tries again by itself (a live one) shows of `error`: nothing
 *  once it is gone (null), nor for a call that had no answer at all, which the page
 *  says once, on top (see unanswered). */
export const liveFailure = (error) => (error && !unanswered(error) ? [failure(error)] : []);

/** A table with a header row, in a box that scrolls sideways (a wide table never
 *  widens the page); on a phone each row shows as a card of labelled cells.
 *  `row(cells)` makes a row for its `body`; the columns of `numbers` (their indexes)
 *  hold numbers (right-aligned, never broken), those of `ids` identifiers a client
 *  chose, which wrap anywhere within a bounded width (a visitor id of 128 characters
 *  made its column 1,231 px wide, and pushed the others out of sight). */
export function table(label, headings, caption = "", numbers = [], ids = []) {
  const body = h("tbody", {});
  const kind = (i) => (numbers.includes(i) ? "number" : null);
  // (a cell's text is one element: on a phone the cell is a grid of its label and its
  // value, and a text with a marked escape in it, three nodes, was three grid items,
  // the mark under the label of a line of its own)
  const held = (i, cell) => (ids.includes(i) ? h("div", {class: "id"}, cell)
    : cell instanceof Node ? cell : h("span", {}, cell));
  const element = h("div", {class: "table", tabindex: 0, role: "region", "aria-label": label},
    h("table", {}, caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, headings.map((text, i) => h("th", {scope: "col", class: kind(i)},
        text)))),
      body));
  const row = (cells) => h("tr", {},
    cells.map((cell, i) => h("td", {"data-label": headings[i], class: kind(i)}, held(i, cell))));
  return {element, body, row};
}

/** A "More" button for a paged list: `load(pageToken)` shows a page and returns
 *  the next token ("" after the last). Loads the first page at once; a failure
 *  is said in `where`. */
export function paged(load, signal, where) {
  const more = h("button", {type: "button", hidden: true}, "More");
  let token = "";
  const next = async () => {
    const focused = document.activeElement === more;  // (disabled, it loses the focus)
    more.disabled = true;
    try {
      token = await load(token);
      if (!token && focused) {
        // (hidden after the last page, the button took the focus with it): the place
        // the rows went on from
        where.setAttribute("tabindex", "-1");
        where.focus({preventScroll: true});
      }
      more.hidden = !token;
    } catch (error) {
      if (!signal.aborted) {
        // (the server may be back in a moment: the same page, asked again; a request
        // refused for what it asks, a bad filter, would be refused again)
        const again = h("button", {type: "button"}, "Try again");
        const said = h("div", {class: "failed"}, failure(error));
        if (error.code !== "INVALID_ARGUMENT") said.append(again);
        again.addEventListener("click", () => {
          // (removed, the button would take the focus with it: to where the rows go on)
          where.setAttribute("tabindex", "-1");
          where.focus({preventScroll: true});
          said.remove();
          next();
        });
        where.append(said);
        if (focused && again.isConnected) again.focus({preventScroll: true});
      }
    }
    more.disabled = false;
    if (token && focused && !where.querySelector(".failed")) more.focus({preventScroll: true});
  };
  more.addEventListener("click", next);
  next();
  return more;
}
