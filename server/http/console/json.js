// JSON shown as indented lines, with each field violation beside the field it names.

import {h} from "./dom.js";

// Violations name fields as proto paths (user_event.product_details[0].product.id),
// JSON spells them in lowerCamelCase: compare both without case and underscores.
const canonical = (path) => path.toLowerCase().replaceAll("_", "");

function walk(value, path, visit) {
  visit(path);
  if (Array.isArray(value)) value.forEach((item, i) => walk(item, `${path}[${i}]`, visit));
  else if (value && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      walk(item, path ? `${path}.${canonical(key)}` : canonical(key), visit);
    }
  }
}

/** The nearest path of `paths` at or above `path` ("" is the whole value). */
function nearest(path, paths) {
  while (path && !paths.has(path)) {
    const parent = path.replace(/(\.[^.[\]]*|\[\d+\])$/, "");
    path = parent === path ? "" : parent;
  }
  return path;
}

/** A <pre> of `value` as JSON; each violation ({field, description}) is shown on
 *  the line of its field, or of the nearest enclosing field present (a missing
 *  field is reported beside its parent). */
export function jsonView(value, violations = []) {
  const paths = new Set();
  walk(value, "", (path) => paths.add(path));
  const marks = new Map();
  for (const violation of violations) {
    const at = nearest(canonical(violation.field || ""), paths);
    marks.set(at, [...(marks.get(at) || []), violation]);
  }
  const lines = [];
  // A line cut by the screen's width goes on under its own text, not at the left edge,
  // where it read as a line of its own (a phone cut most): each line is a block with
  // a hanging indent at its depth (--depth, set through the CSSOM: the page's CSP
  // refuses style attributes). A block ends its line: a newline in its text too, and
  // a copy of the JSON had a blank line after each.
  const line = (text, path, indent) => {
    const found = path === null ? null : marks.get(path);
    const said = h("span", {class: found ? "line bad" : "line"}, text,
      found ? h("span", {class: "why"}, found.map((v) => ` ← ${v.field}: ${v.description}`))
        : null);
    said.style.setProperty("--depth", indent.length / 2);
    lines.push(said);
  };
  const render = (item, path, key, indent, comma) => {
    const head = indent + (key === null ? "" : `${JSON.stringify(key)}: `);
    const entries = Array.isArray(item) ? item.map((v, i) => [null, v, `${path}[${i}]`])
      : item && typeof item === "object"
        ? Object.entries(item).map(([k, v]) => [k, v, path ? `${path}.${canonical(k)}` : canonical(k)])
        : null;
    if (!entries || !entries.length) {
      line(head + JSON.stringify(item) + comma, path, indent);
      return;
    }
    const [open, close] = Array.isArray(item) ? ["[", "]"] : ["{", "}"];
    line(head + open, path, indent);
    entries.forEach(([k, v, p], i) => render(v, p, k, `${indent}  `, i < entries.length - 1 ? "," : ""));
    line(indent + close + comma, null, indent);
  };
  render(value, "", null, "", "");
  return h("pre", {class: "json", tabindex: 0}, lines);
}
