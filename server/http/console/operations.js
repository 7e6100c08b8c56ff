// #operations: the catalog's long-running operations (imports, purges, rejoins),
// with their counts, a progress bar and a cancel button while they run, and why an
// import's lines failed (its error samples).

import {call} from "./api.js";
import {failure, h, noCatalog, when} from "./dom.js";
import {count, int} from "./format.js";
import {route} from "./names.js";

const CONFIRM_MS = 5000;  // a Cancel pressed once waits this long to be pressed again

const REFRESH_MS = 1000;
// The retail version operations are read under: a REST answer names its types in the
// version of its path, and v2 has none for exports (they would be left out).
const API = "/v2beta";

function state(op) {
  if (!op.done) return "running";
  if (!op.error) return "done";
  return op.error.code === 1 ? "cancelled" : "failed";
}

// The counts each kind of operation answers: proto3 JSON leaves a 0 out, so a purge
// that deleted nothing said no count at all.
const KNOWN = {
  ImportMetadata: ["successCount", "failureCount"],
  PurgeProductsMetadata: ["successCount", "failureCount"],
  PurgeProductsResponse: ["purgeCount"],
  PurgeUserEventsResponse: ["purgedEventsCount"],
  RejoinUserEventsResponse: ["rejoinedUserEventsCount"],
};

// A count's words where its name says too little, by the type that holds it: an
// import's success_count counts lines stored before too ("stored" said 281 of a
// re-import that stored none); a product purge's success_count is what it deleted
// (the import's "valid: 1" was said of it), its purge_count what its filter matched,
// deleted or, without force, only counted (it said "purge: 1"). A purge of events
// without force deletes nothing and answers how many it would have: Google's v2beta
// metadata of a purge is empty, so the card cannot tell the two apart, and says both
// ("purged events: 2" was read as two events gone, both still stored).
const WORDS = {
  "ImportMetadata.success": "valid",
  "ImportMetadata.failure": "failed",
  "PurgeProductsMetadata.success": "deleted",
  "PurgeProductsMetadata.failure": "failed",
  "PurgeProductsResponse.purge": "matched",
  "PurgeUserEventsResponse.purged events": "purged (or, without force, matched) events",
};

/** The integer counts of the metadata and response ({successCount: "12"} ...), in
 *  words: "purgedEventsCount" as "purged events: 1,234"; an import's newly stored
 *  events from its summary. */
function counts(op) {
  const found = new Map();
  for (const part of [op.metadata, op.response]) {
    if (!part) continue;
    const type = (part["@type"] || "").split(".").pop();
    // (a response's counts are known once done; a metadata's from the start)
    const zeros = op.done || type.endsWith("Metadata") ? KNOWN[type] || [] : [];
    const given = {...Object.fromEntries(zeros.map((name) => [name, "0"])), ...part};
    for (const [name, value] of Object.entries(given)) {
      if (!name.endsWith("Count")) continue;
      const words = name.replace(/Count$/, "").replace(/[A-Z]/g, (c) => ` ${c.toLowerCase()}`);
      const said = WORDS[`${type}.${words}`] || words;
      found.set(words, `${said}: ${count(value)}`);
    }
  }
  const summary = op.response?.importSummary;
  if (summary) {
    found.set("new", `newly stored: ${count(int(summary.joinedEventsCount) +
      int(summary.unjoinedEventsCount))} (not joined: ${count(summary.unjoinedEventsCount)})`);
  }
  return [...found.values()].join(", ");
}

let cards = 0;  // for the ids of the cards' headings

/** An operation's card; `onCancel(name, button)` once its Cancel is pressed twice,
 *  `onArmed(name)` / `onArmed(null)` as the first press asks for the second / lapses. */
function card(op, onCancel, onArmed) {
  const name = op.name.split("/operations/").pop();
  const progress = h("progress", {max: 1, "aria-label": `Progress of ${name}`});
  const heading = `operation-${++cards}`;
  // (each card's button is "Cancel": a screen reader, tabbing from one to the next,
  // said which operation only by its description)
  const cancel = h("button", {type: "button", class: "cancel", "aria-describedby": heading},
    "Cancel");
  // Pressed once, it asks to be pressed again: one Enter on a focused button stopped an
  // import of 600,000 lines for good.
  let armed = null;
  cancel.addEventListener("click", () => {
    if (armed === null) {
      cancel.textContent = "Press again to cancel";
      cancel.classList.add("armed");
      onArmed(name);  // (a focused button's new text is not read out)
      armed = setTimeout(() => {
        armed = null;
        cancel.textContent = "Cancel";
        cancel.classList.remove("armed");
        onArmed(null);
      }, CONFIRM_MS);
      return;
    }
    clearTimeout(armed);
    armed = null;
    cancel.textContent = "Cancel";
    cancel.classList.remove("armed");
    onCancel(op.name, cancel);
  });
  const fields = {
    state: h("span", {class: "tag"}), counts: h("span", {}), started: h("time", {}),
    updated: h("time", {}),
    error: h("p", {class: "error"}), progress, cancel,
    why: h("summary", {}), samples: h("ul", {}), errorsFile: h("p", {class: "hint"}),
    shownSamples: 0, output: h("div", {class: "output"}),
  };
  fields.when = h("p", {class: "hint"}, "Started ", fields.started, ", updated ",
    fields.updated);
  fields.failures = h("details", {class: "samples"}, fields.why, fields.samples,
    fields.errorsFile);
  const element = h("article", {class: "operation", "data-name": op.name},
    h("h3", {id: heading}, name), h("p", {}, fields.state, " ", fields.counts),
    progress, fields.when, fields.output, fields.error, fields.failures, cancel);
  return {element, fields};
}

/** Shows `op` in its card, changing only what changed (a focused button stays). */
function update({element, fields}, op) {
  const now = state(op);
  element.dataset.state = now;
  fields.state.textContent = now;
  fields.state.className = `tag ${now === "failed" ? "bad" : now === "cancelled" ? "warn" : ""}`;
  fields.counts.textContent = counts(op);
  fields.started.textContent = when(op.metadata?.createTime);
  fields.updated.textContent = when(op.metadata?.updateTime);
  // (the metadata of a purge or a rejoin has no times)
  fields.when.hidden = !op.metadata?.createTime || !op.metadata?.updateTime;
  fields.error.textContent = op.error ? op.error.message : "";
  fields.error.hidden = !op.error;
  // (a cancel asked for is no failure: said as a warning, not in red)
  fields.error.className = now === "cancelled" ? "warning" : "error";
  // No job knows its total ahead: a running bar moves without a value.
  if (op.done) fields.progress.value = 1;
  else fields.progress.removeAttribute("value");
  fields.progress.hidden = Boolean(op.error);
  fields.cancel.hidden = op.done;
  showOutput(fields.output, op);
  showSamples(fields, op);
}

/** Where an export wrote (its response's outputResult): each file's gs:// URI, or
 *  BigQuery table; once done, the card of an export said only "done". */
function showOutput(output, op) {
  const result = op.response?.outputResult;
  const places = [
    ...(result?.gcsResult || []).map((r) => r.outputUri || ""),
    ...(result?.bigqueryResult || []).map((r) => `BigQuery ${r.datasetId || ""}.${r.tableId || ""}`),
  ].filter(Boolean);
  const said = places.join("\n");
  if (output.dataset.said === said) return;  // (unchanged: a selection in it stays)
  output.dataset.said = said;
  output.hidden = !places.length;
  output.replaceChildren(...(places.length ? [
    h("p", {}, places.length === 1 ? "Written to" : `Written to ${places.length} places`),
    h("ul", {}, places.map((place) => h("li", {}, h("code", {}, place))))] : []));
}

/** An import's error samples (each names its file, line and field), once it has some;
 *  rebuilt only when their number changes, so that an open list stays open. */
function showSamples(fields, op) {
  const samples = op.response?.errorSamples || [];
  fields.failures.hidden = !samples.length;
  if (samples.length === fields.shownSamples) return;
  fields.shownSamples = samples.length;
  const failed = Number(op.metadata?.failureCount || samples.length);
  fields.why.textContent = samples.length < failed
    ? `Why lines failed: the first ${samples.length} of ${failed}`
    : `Why ${failed === 1 ? "a line" : "lines"} failed`;
  fields.samples.replaceChildren(...samples.map((sample) => h("li", {}, sample.message)));
  const prefix = op.response?.errorsConfig?.gcsPrefix;
  const id = op.name.split("/").pop();
  fields.errorsFile.textContent = prefix
    ? `Every failure is also in ${prefix.replace(/\/$/, "")}/${id}-errors.json.` : "";
  fields.errorsFile.hidden = !prefix;
}

const SHOWN = 50;  // the newest operations shown (and every running one)
const PAGES = 20;  // of 100 operations, read at most per refresh

/** The newest SHOWN operations of `path` as far as read: ListOperations lists the
 *  oldest first, so its pages are read to the end, PAGES a refresh (a catalog of
 *  thousands is caught up with over a few refreshes), and each refresh starts again
 *  at the last page read, not at the first (20 pages a second, each tab). */
function newestOperations(path) {
  let resume = "";  // the page token of the last page read ("": the first page)
  let before = [];  // the newest SHOWN operations before that page
  return async (signal) => {
    let token = resume;
    let older = before;
    for (let page = 0; page < PAGES; page++) {
      const answer = await call(path, {query: {pageSize: 100, ...(token && {pageToken: token})},
        signal});
      const operations = answer.operations || [];
      if (!answer.nextPageToken) {
        resume = token;
        before = older;
        return {operations: [...older, ...operations].slice(-SHOWN), more: false};
      }
      older = [...older, ...operations].slice(-SHOWN);
      token = answer.nextPageToken;
    }
    resume = token;  // the next refresh goes on from here
    before = older;
    return {operations: older, more: true};
  };
}

/** The operation `name` as the server has it now; null once it no longer does. */
async function stillStored(name, signal) {
  try {
    return await call(route`${API}/${name}`, {signal});
  } catch (error) {
    if (error.code === "NOT_FOUND") return null;
    throw error;
  }
}

export function render(main, ctx) {
  main.append(h("h2", {}, "Operations"));
  if (!ctx.catalog) {
    main.append(noCatalog(ctx.tenants));
    return;
  }
  main.append(h("p", {class: "hint"}, `Long-running operations of ${ctx.catalog} (imports, ` +
    `exports, purges, rejoins, inventory updates): the newest ${SHOWN} and every running one, ` +
    "newest first."));
  const status = h("div", {role: "status"});
  const list = h("div", {class: "operations"});
  main.append(status, list);
  const cards = new Map();
  let asking = null;  // what the status says while a Cancel waits for its second press
  const onArmed = (name) => {
    if (name) {
      asking = h("p", {}, `Press Cancel again within ${CONFIRM_MS / 1000} seconds to ` +
        `cancel ${name}.`);
      status.replaceChildren(asking);
    } else if (asking?.isConnected) {
      status.replaceChildren();
    }
  };
  const onCancel = async (name, button) => {
    // Disabled, then hidden, the button takes the focus with it (to the page's body):
    // it goes to the operation's card, whose state says what came of the cancel.
    const focused = document.activeElement === button;
    button.disabled = true;
    try {
      await call(route`${API}/${name}:cancel`, {method: "POST", body: {}, signal: ctx.signal});
      status.replaceChildren(h("p", {}, `Cancel asked of ${name.split("/").pop()}.`));
      const article = button.closest("article");
      if (focused && article) {
        article.setAttribute("tabindex", "-1");
        article.focus({preventScroll: true});
      }
    } catch (error) {
      status.replaceChildren(failure(error));
      button.disabled = false;
    }
  };
  // ListOperations lists the oldest first: past 50 operations (an hourly retention
  // purge makes 50 in two days) a new import was not on the first page, and could not
  // be seen nor cancelled here (nor, once ended, read). So the pages are read to their
  // end (newestOperations) and the newest SHOWN kept, and the running ones are asked
  // for by themselves beside them; one shown running that neither holds now ended
  // since: read it once.
  const path = route`${API}/${ctx.catalog}/operations`;
  const newest = newestOperations(path);
  const reading = h("p", {class: "hint", hidden: true},
    "Reading the catalog's operations, oldest first: the newest are not all shown yet.");
  main.insertBefore(reading, list);
  const endedHere = new Set();  // the names of those seen to end while the page is open
  const refresh = async () => {
    try {
      const [listed, running] = await Promise.all([
        newest(ctx.signal),
        call(path, {query: {pageSize: 100, filter: "done=false"}, signal: ctx.signal})]);
      reading.hidden = !listed.more;
      const found = new Map([...listed.operations, ...running.operations || []]
        .map((op) => [op.name, op]));
      for (const [name, shown] of cards) {
        if (found.has(name)) continue;
        // (one shown running, or seen to end here, stays while the server has it)
        const kept = shown.element.dataset.state === "running" || endedHere.has(name);
        const op = kept ? await stillStored(name, ctx.signal) : null;
        if (op) {
          found.set(name, op);
          continue;
        }
        // Deleted by a reset (a catalog's finished operations go with it), or past the
        // newest SHOWN: its card stayed, and "No operation yet." was said above it, and
        // then beside a new one.
        endedHere.delete(name);
        if (shown.element.contains(document.activeElement)) main.focus({preventScroll: true});
        shown.element.remove();
        cards.delete(name);
      }
      const ops = [...found.values()];
      if (!ops.length) list.replaceChildren(h("p", {class: "hint"}, "No operation yet."));
      else if (!cards.size) list.replaceChildren();
      for (const op of ops) {
        let shown = cards.get(op.name);
        if (!shown) {
          shown = card(op, onCancel, onArmed);
          cards.set(op.name, shown);
          list.prepend(shown.element);
        }
        const was = shown.element.dataset.state;
        update(shown, op);
        if (was === "running" && shown.element.dataset.state !== "running") {
          endedHere.add(op.name);
        }
      }
      // (a refresh that failed before: the server is back; a refused cancel stays said)
      status.querySelector(".error.polled")?.remove();
    } catch (error) {
      if (ctx.signal.aborted) return;
      if (error.code === "PERMISSION_DENIED") {
        // Asked again each second, the same refusal was said again each second (and a
        // screen reader read it each time): said once, in words, and asked no more.
        status.replaceChildren(h("p", {class: "error", role: "alert"},
          "This key may not read operations: they need an admin key (Change key, above). ",
          `The server said: ${error.message}`));
        return;
      }
      const said = status.querySelector(".error.polled");
      if (said) said.textContent = failure(error).textContent;
      else status.replaceChildren(Object.assign(failure(error), {className: "error polled"}));
    }
    if (!ctx.signal.aborted) setTimeout(refresh, REFRESH_MS);
  };
  refresh();
}
