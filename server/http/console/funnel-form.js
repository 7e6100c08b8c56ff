// The funnel's question as a form: its steps (an event type and conditions
// each; added, moved and removed with buttons), what counts as an entrant, the
// conversion window and the breakdown. `question()` is RunFunnel's body.

import {h} from "./dom.js";

const SHOP = ["home-page-view", "detail-page-view", "add-to-cart", "purchase-complete"];
const TALENT = ["IMPRESSION", "VIEW", "APPLICATION_START", "APPLICATION_FINISH"];
export const RETAIL_TYPES = ["add-to-cart", "category-page-view", "detail-page-view",
  "home-page-view", "promotion-offered", "promotion-not-offered", "purchase-complete",
  "remove-from-cart", "search", "shopping-cart-page-view"];
const JOB_TYPES = ["IMPRESSION", "VIEW", "VIEW_REDIRECT", "APPLICATION_START",
  "APPLICATION_FINISH", "APPLICATION_QUICK_SUBMISSION", "APPLICATION_REDIRECT",
  "APPLICATION_START_FROM_SEARCH", "APPLICATION_REDIRECT_FROM_SEARCH",
  "APPLICATION_COMPANY_SUBMIT", "BOOKMARK", "NOTIFICATION", "HIRED", "SENT_CV",
  "INTERVIEW_GRANTED"];
const MAX_STEPS = 10;
const RETAIL_CONDITIONS = [["productId", "Product id"], ["category", "Category"],
  ["attributeKey", "Attribute"], ["attributeValue", "Attribute value"]];
const UNITS = {minutes: 60, hours: 3600, days: 86400};

const option = (value, text = value) => h("option", {value}, text);

function select(id, options, value) {
  const element = h("select", {id}, options.map(([v, text]) => option(v, text)));
  element.value = value;
  return element;
}

/** The window's number and unit from RunFunnel's conversionWindow ("86400s"). */
function windowParts(text) {
  const total = Number((text || "86400s").replace(/s$/, ""));
  const unit = ["days", "hours", "minutes"].find((u) => total % UNITS[u] === 0) || "minutes";
  return [total / UNITS[unit], unit];
}

/** The form for a catalog (`retail`) or a tenant, filled from `saved` (a RunFunnel
 *  body); `onRun()` when it is sent. */
export function funnelForm({retail, saved = {}, onRun}) {
  const defaults = () => (retail ? SHOP : TALENT).map((eventType) => ({eventType}));
  let steps = saved.steps?.length ? saved.steps.map((step) => ({...step})) : defaults();
  const list = h("ol", {class: "steps"});
  const types = h("datalist", {id: "retail-types"}, RETAIL_TYPES.map((t) => option(t)));

  const field = (step, i, name, text, changed) => {
    const id = `step-${i}-${name}`;
    const input = name === "searchQueryPresent"
      ? h("input", {id, type: "checkbox", checked: Boolean(step[name])})
      : h("input", {id, value: step[name] || "", autocomplete: "off"});
    input.addEventListener("input", () => {
      step[name] = input.type === "checkbox" ? input.checked : input.value.trim();
      changed();
    });
    return h("span", {class: "field"}, h("label", {for: id}, text), input);
  };

  /** Moves step `i` by `by` (null: removes it); the focus stays on a button of its. */
  const move = (i, by, kind) => {
    const [step] = steps.splice(i, 1);
    if (by !== null) steps.splice(i + by, 0, step);
    draw();
    if (by === null) return add.focus();
    const moved = list.children[i + by];
    const button = moved.querySelector(`.${kind}`);
    (button.disabled ? moved.querySelector(kind === "up" ? ".down" : ".up") : button).focus();
  };

  const row = (step, i) => {
    const id = `step-${i}-type`;
    const type = retail
      ? h("input", {id, list: "retail-types", value: step.eventType, required: true,
        autocomplete: "off"})
      : select(id, JOB_TYPES.map((t) => [t, t]), step.eventType);
    type.addEventListener(retail ? "input" : "change", () => { step.eventType = type.value.trim(); });
    const summary = h("summary", {});
    const said = () => {
      const set = Object.keys(step).filter((k) => k !== "eventType" && step[k]).length;
      summary.textContent = set ? `Conditions (${set})` : "Conditions";
      return set;
    };
    const conditions = retail
      ? [...RETAIL_CONDITIONS.map(([name, text]) => field(step, i, name, text, said)),
        field(step, i, "searchQueryPresent", "Has a search query", said)]
      : [field(step, i, "job", "Job (projects/…/jobs/…)", said)];
    const n = i + 1;
    return h("li", {class: "step-row"},
      h("label", {for: id, class: "step-name"}, `Step ${n}`), type,
      h("span", {class: "step-buttons"},
        h("button", {type: "button", disabled: i === 0, "aria-label": `Move step ${n} up`,
          class: "up", onclick: () => move(i, -1, "up")}, "↑"),
        h("button", {type: "button", disabled: i === steps.length - 1, class: "down",
          "aria-label": `Move step ${n} down`,
          onclick: () => move(i, 1, "down")}, "↓"),
        h("button", {type: "button", disabled: steps.length === 1, class: "remove",
          "aria-label": `Remove step ${n}`, onclick: () => move(i, null)}, "✕")),
      h("details", {class: "conditions", open: said() > 0}, summary, conditions));
  };

  const add = h("button", {type: "button", class: "add", onclick: () => {
    steps.push({eventType: retail ? "" : "VIEW"});
    draw();
    list.querySelector(`li:last-child #step-${steps.length - 1}-type`)?.focus();
  }}, "Add a step");
  const reset = h("button", {type: "button", onclick: () => { steps = defaults(); draw(); }},
    retail ? "Shop funnel" : "Job funnel");
  function draw() {
    list.replaceChildren(...steps.map(row));
    add.disabled = steps.length >= MAX_STEPS;
  }
  draw();

  const counts = retail ? [["VISITOR", "visitor"], ["USER", "user"], ["SESSION", "session"]]
    : [["REQUEST", "search request"], ["JOB", "job"]];
  const countBy = select("count-by", counts, saved.countBy || counts[0][0]);
  const [amount, unit] = windowParts(saved.conversionWindow);
  const windowAmount = h("input", {id: "window", type: "number", min: 1, step: 1, value: amount,
    required: true});
  const windowUnit = select("window-unit", Object.keys(UNITS).map((u) => [u, u]), unit);
  const breakdown = select("breakdown", [["", "none"], ["BY_DAY", "by day"],
    ["BY_ITEM", retail ? "by product" : "by job"]], saved.breakdown || "");

  const form = h("form", {class: "funnel-form", "aria-label": "The funnel's steps"},
    types, list, h("p", {class: "row"}, add, reset),
    h("p", {class: "row"},
      h("span", {class: "field"}, h("label", {for: "count-by"}, "Count each"), countBy),
      h("span", {class: "field"}, h("label", {for: "window"}, "within"), windowAmount,
        h("label", {for: "window-unit", class: "hidden"}, "Unit of the window"), windowUnit),
      h("span", {class: "field"}, h("label", {for: "breakdown"}, "Breakdown"), breakdown),
      h("button", {type: "submit", id: "run-funnel"}, "Run the funnel")));
  form.addEventListener("submit", (e) => { e.preventDefault(); onRun(); });

  const question = () => ({
    steps: steps.map((step) => Object.fromEntries(
      Object.entries(step).filter(([, v]) => v !== "" && v !== false && v !== undefined))),
    countBy: countBy.value,
    conversionWindow: `${Number(windowAmount.value) * UNITS[windowUnit.value]}s`,
    ...(breakdown.value ? {breakdown: breakdown.value} : {}),
  });
  return {element: form, question};
}
