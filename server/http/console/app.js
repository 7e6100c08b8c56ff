// The console's frame: the catalog chooser, the key, and the page the URL's
// hash names (#feed, #events?filter=..., #event/ID, #operations, ...).

import {ASKING_KEY, UNANSWERED, UNREACHABLE, call, forgetKey, hasKey, keyDeclined, noKeyGiven,
  whenWaiting} from "./api.js";
import {h, failure, shown} from "./dom.js";
import {shortName} from "./format.js";
import {isName, nameProblem, route} from "./names.js";
import * as catalogs from "./catalogs.js";
import * as event from "./event.js";
import * as events from "./events.js";
import * as feed from "./feed.js";
import * as insights from "./insights.js";
import * as operations from "./operations.js";
import * as products from "./products.js";
import * as talent from "./talent.js";

const PAGES = {feed, events, event, operations, products, talent, catalogs, insights};
const CHOSEN = "footfall.catalog";
const PROJECT = "footfall.project";  // set when the key may not read every project
const EVERY = "*";  // what GetCaller says of a key that may read every project
const CATALOGS_MS = 3000;
const REFOCUS_MS = 10000;  // how long a page shown again may take to list an event
// While no catalog holds anything (read so, not failed), for at most FIRST_CATALOG_TRIES
// reads: a first event, sent right after opening the page (the README's quick start),
// showed after up to 3 s.
const FIRST_CATALOG_MS = 500;
const FIRST_CATALOG_TRIES = 120;
let emptyReads = 0;  // reads in a row that found nothing

const main = document.getElementById("main");
const chooser = document.getElementById("catalog");
const keyButton = document.getElementById("key-button");
// Shown while a project named in the form is read: another could be read only by
// entering the key again ("Change key", which forgets the project too).
const projectButton = document.getElementById("project-button");
const waitingNotice = document.getElementById("waiting");
// Said while the catalogs' poll finds no server: a page shown before it went (one that
// said no catalog holds events yet, say) went on saying so, with no word of it.
const offline = document.getElementById("offline");
whenWaiting((now) => { waitingNotice.hidden = !now; });
// Whether the key prompt was shown since the page last read: the focus it leaves on the
// page's body goes to the page once read (a key of one project is asked no project,
// whose form took it before).
let prompted = false;
document.addEventListener(ASKING_KEY, () => { offline.hidden = true; prompted = true; });
// (at once, as a page's call meets it: its live lists leave it to this notice)
document.addEventListener(UNANSWERED, () => { if (current && !denied) sayGone(UNREACHABLE); });
let current = null;  // {controller, hash}
let known = {catalogs: [], tenants: []};
// Whether the server has listed them yet: behind the key dialog, or the project's form,
// the header said "Catalog: no catalog yet" of a project it had not read.
let listed = false;
let denied = null;  // the refusal of the catalogs' list, while the key may not read
// What the key grants (GET /console/v1/caller: {keysChecked, projects, role, keyName}),
// read before the first list: a key of one project was asked "Which project?", and one
// of several had its projects typed, where the server knows them. Null until read; {}
// when the server could not say (its projects are then named in the form, as before).
let caller = null;
// In place of every page while the key writes only (GetCaller says its role): it reads
// nothing, and each page said only that the catalogs' list refused its role, in red.
const WRITES_ONLY = {code: "", reason: "WRITES_ONLY", message: ""};

/** The projects the key may read, one by one ([] when it may read every one, or when
 *  the server could not say). One whose id no path can carry ("..", which a keys file
 *  may hold) is left out: it would be read at another route (see nameProblem). */
function granted() {
  const projects = caller?.projects || [];
  return projects.includes(EVERY) ? []
    : projects.filter((id) => !nameProblem("A project", `projects/${id}`, "project"));
}

/** What the pages share: the chosen catalog, the project(s) read, the data sets seen. */
export const context = {
  get catalog() { return chooser.value; },
  get projects() { return `projects/${sessionStorage.getItem(PROJECT) || "-"}`; },
  get tenants() { return known.tenants.map((t) => t.name); },
  get catalogs() { return known.catalogs; },
  choose(name) {
    sessionStorage.setItem(CHOSEN, name);
    refreshChooser();
    followChoice(name);
    show();
  },
  /** Make the catalog a page's URL names the chosen one, without showing the page again:
   *  a link or a bookmark opens what it names (the header's first catalog was read). */
  adopt(name) {
    if (name === chooser.value || !isName(name, "catalog")) return;
    sessionStorage.setItem(CHOSEN, name);
    refreshChooser();
  },
};

/** A catalog chosen in the header replaces the one the page's URL names (`parent`). */
function followChoice(name) {
  const [route, query = ""] = location.hash.slice(1).split("?");
  const params = new URLSearchParams(query);
  const named = params.get("parent");
  if (!named || named.includes("/tenants/")) return;
  params.set("parent", name);
  history.replaceState(null, "", `#${route}?${params}`);
}

// Google's one catalog, chosen first when it holds events: the first by name was, and a
// mistyped one ("default_catalg", which Footfall stores as any other) sorts before it,
// so the console opened on the typo's one event, not on the shop's.
const GOOGLE_CATALOG = "/locations/global/catalogs/default_catalog";

function refreshChooser() {
  const names = known.catalogs.map((c) => c.name);
  const chosen = sessionStorage.getItem(CHOSEN) || "";  // (only a catalog's name is read)
  // (one of another project than the one read, chosen before the project or the key was
  // changed, was read on: refused, or shown under the other project's name)
  const read = (name) => context.projects === "projects/-" ||
    name.startsWith(`${context.projects}/`);
  const wanted = (isName(chosen, "catalog") && read(chosen) && chosen) ||
    (read(chooser.value) && chooser.value) ||
    names.find((name) => name.endsWith(GOOGLE_CATALOG)) || names[0] || "";
  if (wanted && !names.includes(wanted)) names.unshift(wanted);
  const same = names.length === chooser.options.length &&
    names.every((name, i) => chooser.options[i].value === name);
  if (!same) {
    chooser.replaceChildren(...names.map((name) => h("option", {value: name, title: name},
      shortName(name, names))));
  }
  chooser.value = wanted;
  chooser.title = wanted;
  chooser.disabled = names.length === 0;
  if (!names.length) {
    chooser.replaceChildren(h("option", {value: ""}, listed ? "no catalog yet" : "not read yet"));
  }
}

/** The project id in what was typed: "projects/my-shop" (as the server's refusals
 *  name projects) or a catalog's whole name read as "my-shop"; a path of
 *  "projects/projects/my-shop" found no route, and the form was gone. */
function projectId(typed) {
  const id = typed.trim().replace(/^\/+/, "");
  return id.startsWith("projects/") ? id.split("/")[1] : id.split("/")[0];
}

/** Asks which project to read, in place of the page: the key may not read them all
 *  (or not the one named, or none: a writer key reads nothing, so "Change key" shows). */
function askProject(error) {
  const named = sessionStorage.getItem(PROJECT);
  if (granted().length > 1 && error.reason !== "ROLE_NOT_ALLOWED") {
    chooseProject(error, named);
    return;
  }
  const input = h("input", {id: "project", required: true, autocomplete: "off",
    value: named || ""});
  const form = h("form", {class: "search"},
    h("label", {for: "project"}, "Project id"), input, h("button", {type: "submit"}, "Read it"));
  const said = h("p", {class: "error", role: "alert", hidden: true});
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    // (it goes into the path of every read: ".." in it, even encoded, read another route)
    const id = projectId(input.value);
    const problem = nameProblem("The project named", `projects/${id}`, "project");
    said.replaceChildren(...shown(problem));
    said.hidden = !problem;
    if (said.hidden) {
      sessionStorage.setItem(PROJECT, id);
      loadCatalogs();
    }
  });
  // (a key whose role may not read is told so: naming another project would not help)
  const role = error.reason === "ROLE_NOT_ALLOWED";
  const advice = role
    ? "This key's role may not read any project: use a reader or admin key (Change key, " +
      "above)."
    : named && error.code !== "PERMISSION_DENIED"
      ? `The server cannot read a project named ${named}: name it by its id alone ` +
        "(my-shop for projects/my-shop)."
      : named
        ? `This key may not read project ${named}: name another one, or use another key ` +
          "(Change key, above)."
        : "This key may read only some projects: name the one to read.";
  form.hidden = role;
  // The first time, the server's words (PERMISSION_DENIED, in red) only said what the
  // advice says, as an error, of the expected step for a key of some projects.
  const failed = role || named ? [failure(error)] : [];
  main.replaceChildren(h("h2", {}, role ? "This key may not read" : "Which project?"),
    ...failed, h("p", {}, advice), form, said);
  retitle();
  placeChooser();
  keyButton.hidden = !hasKey();
  projectButton.hidden = true;  // (the form is the way)
  // (hidden, the form's input could not take the focus: it fell to the page's body)
  if (role && !keyButton.hidden) keyButton.focus();
  else input.focus();
}

/** Offers the projects the key may read, one button each, in place of the page: a key
 *  of several projects (not every one) reads one at a time. `named`: the one chosen
 *  before, refused since (the keys were read again without it), said with the refusal. */
function chooseProject(error, named) {
  const choose = (id) => {
    sessionStorage.setItem(PROJECT, id);
    caller = null;  // (read again: the keys may have been read again meanwhile)
    loadCatalogs();
  };
  const choices = h("ul", {class: "projects", "aria-labelledby": "projects-h"},
    granted().map((id) => h("li", {}, h("button", {type: "button", class: "project-choice",
      "data-project": id, onclick: () => choose(id)}, id))));
  // (one of its own, chosen and then refused: the keys were read again meanwhile)
  const refused = named && granted().includes(named) && error.code;
  main.replaceChildren(h("h2", {id: "projects-h"}, "Which project?"),
    ...(refused ? [failure(error)] : []),
    h("p", {}, `This key may read ${granted().length} projects, one at a time: choose the ` +
      "one to read (Change project, above, to read another later)."), choices);
  retitle();
  placeChooser();
  keyButton.hidden = !hasKey();
  projectButton.hidden = true;  // (the choice is the way)
  choices.querySelector("button").focus();
}

/** Says, in place of the page, that the key writes only (a writer key: GetCaller said
 *  so): it may send events, to the projects it names, and read none of them back. */
function writesOnly() {
  const projects = caller.projects || [];
  const where = projects.includes(EVERY) ? "to every project"
    : `to ${projects.length === 1 ? "project" : "projects"} ` +
      new Intl.ListFormat("en", {type: "conjunction"}).format(projects);
  main.replaceChildren(h("h2", {}, "This key writes only"),
    h("p", {}, `It may send events ${where}, not read them. To see events, use a reader or ` +
      "admin key (Change key, above)."));
  retitle();
  placeChooser();
  keyButton.textContent = "Change key";
  keyButton.hidden = !hasKey();
  projectButton.hidden = true;  // (no project of its own is read)
  if (!keyButton.hidden) keyButton.focus();
}

/** Reads what the key grants (GetCaller), once a page; the project it reads is then
 *  its only one, or one chosen among its own (see chooseProject). Raises as `call`. */
async function readCaller() {
  try {
    caller = await call("/console/v1/caller");
  } catch (error) {
    // (a server that cannot say: its projects are named in the form, as before)
    if (!["NOT_FOUND", "UNIMPLEMENTED"].includes(error.code)) throw error;
    caller = {};
  }
  const projects = granted();
  const named = sessionStorage.getItem(PROJECT);
  if (projects.length === 1) sessionStorage.setItem(PROJECT, projects[0]);
  else if (projects.length > 1 && named && !projects.includes(named)) {
    sessionStorage.removeItem(PROJECT);  // (another key's: it is not this one's to read)
  }
  keyButton.title = !caller.keyName ? ""
    : caller.role === "WRITER" ? `The key ${caller.keyName} writes only`
      : `Reading with the key ${caller.keyName} (${(caller.role || "").toLowerCase()})`;
}

/** Says on top of the page that the server is gone (`why`), over what it shows. */
function sayGone(why) {
  const said = `${why} What the page shows was read before; it goes on once the server ` +
    "answers again.";
  // (set again each poll, an alert would be read out again every 3 s)
  if (offline.textContent !== said) offline.textContent = said;
  offline.hidden = false;
}

/** The names of the catalogs and tenants (the first thousand), every few seconds: a
 *  new catalog joins the chooser (the first one is chosen). The first answer shows the
 *  page. Names alone: counting the events of a large catalog takes a second. */
async function loadCatalogs() {
  try {
    const hadTenants = known.tenants.length;
    if (caller === null) await readCaller();
    if (caller.role === "WRITER") {
      // (asked no project, and refused none: nothing is read, "Change key" is the way)
      const first = denied !== WRITES_ONLY;
      denied = WRITES_ONLY;
      listed = false;
      offline.hidden = true;
      if (first) show();  // (the page's own link marked current, in the navigation)
      return;
    }
    if (granted().length > 1 && !sessionStorage.getItem(PROJECT)) {
      // (a key of several projects: it chooses one before anything is read)
      denied = {code: "", reason: "PROJECT_REQUIRED", message: ""};
      listed = false;
      offline.hidden = true;
      askProject(denied);
      return;  // until one is chosen
    }
    known = await call(route`/console/v1/${context.projects}/catalogs`,
      {query: {pageSize: 1000, view: "DATA_SET_VIEW_BASIC"}});
    listed = true;
    const wasDenied = denied !== null;
    denied = null;
    offline.hidden = true;
    known.catalogs ||= [];
    known.tenants ||= [];
    emptyReads = known.catalogs.length || known.tenants.length ? 0 : emptyReads + 1;
    const before = chooser.value;
    refreshChooser();
    if (chooser.value !== before && current) show();  // the first catalog appeared
    // The first tenant appeared: the live feed and insights with no catalog follow it,
    // the talent page lists it (a job site's first event left that page saying "No
    // tenant holds client events yet" until it was reloaded).
    else if (!hadTenants && known.tenants.length && current &&
      followsFirstTenant(current.hash || "feed")) show();
    if (!current || wasDenied) show();
    // (the project's form, gone with its input; the key prompt, closed)
    if (wasDenied || prompted) regainFocus(main);
    prompted = false;
  } catch (error) {
    // (a project id the server cannot take in a path, also: "my shop", say)
    if (error.code === "PERMISSION_DENIED" || (sessionStorage.getItem(PROJECT) &&
        ["NOT_FOUND", "INVALID_ARGUMENT"].includes(error.code))) {
      denied = error;
      offline.hidden = true;  // (the server answered)
      askProject(error);  // (over a page too: its form starts this loop again)
      return;  // until the form is sent
    }
    emptyReads = 0;  // (a failed read: the usual pace)
    if (!current) main.replaceChildren(failure(error));
    else if (error.code === "UNAVAILABLE") {
      sayGone(error.message);
    } else {
      offline.hidden = true;  // (the server answered, if not with the catalogs)
    }
    if (error.code === "UNAUTHENTICATED") {  // (the key prompt closed without one)
      // (once, as the prompt closes: not each poll, from wherever a click left it)
      const closedNow = keyButton.hidden || keyButton.textContent !== "Enter key";
      keyButton.textContent = "Enter key";
      keyButton.hidden = false;
      if (closedNow) regainFocus(keyButton);
      setTimeout(loadCatalogs, CATALOGS_MS);
      return;
    }
  }
  keyButton.textContent = "Change key";
  keyButton.hidden = !hasKey();
  const project = sessionStorage.getItem(PROJECT);
  // (a key of one project has no other to read)
  projectButton.hidden = !project || denied !== null || granted().length === 1;
  projectButton.title = project ? `Reading project ${project}; name another` : "";
  setTimeout(loadCatalogs, emptyReads && emptyReads < FIRST_CATALOG_TRIES ? FIRST_CATALOG_MS
    : CATALOGS_MS);
}

/** Whether the page of `hash` shows the first tenant: the talent page, and with no
 *  catalog chosen, the live feed and insights. */
function followsFirstTenant(hash) {
  const page = hash.split("?")[0].split("/")[0];
  return page === "talent" || (!chooser.value && (page === "feed" || page === "insights"));
}

/** The focus, lost with what held it (the key prompt closed, a form replaced by the
 *  page), goes to `element`: it fell to the page's body (a screen reader said nothing
 *  of where it was), and after the prompt Tab went on from the top of the page. */
function regainFocus(element) {
  const at = document.activeElement;
  // (the prompt's input keeps it a moment after the prompt closed)
  if (!at || at === document.body || at.closest("dialog:not([open])")) {
    element.focus({preventScroll: true});
  }
}

const headingWatch = new MutationObserver(() => retitle());

/** The page shown, named by its heading: in the tab's title (every page was "Footfall
 *  console", in a browser's history and list of tabs alike), and as the name of <main>,
 *  which takes the focus as a page is shown (a screen reader said only "main"). */
function retitle() {
  const heading = main.querySelector("h2");
  headingWatch.disconnect();
  if (heading) {
    heading.id ||= "page-h";
    main.setAttribute("aria-labelledby", heading.id);
    // (an event's heading gains its type once the event is read)
    headingWatch.observe(heading, {childList: true, subtree: true, characterData: true});
  } else {
    main.removeAttribute("aria-labelledby");
  }
  document.title = heading ? `${heading.textContent} – Footfall console` : "Footfall console";
}

function show() {
  showPage();
  retitle();
}

function showPage() {
  const hash = location.hash.slice(1) || "feed";
  const [route, query = ""] = hash.split("?");
  const [name, ...rest] = route.split("/");
  const page = PAGES[name] || feed;
  current?.controller.abort();
  const controller = new AbortController();
  current = {controller, hash};
  for (const link of document.querySelectorAll("nav a")) {
    if (link.getAttribute("href") === `#${name}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  placeChooser();
  main.replaceChildren();
  // (a key that may not read: every page said "No catalog holds events yet")
  if (denied === WRITES_ONLY) {
    writesOnly();
    return;
  }
  if (denied) {
    askProject(denied);
    return;
  }
  if (keyDeclined()) {  // (every page said "No catalog holds events yet")
    main.replaceChildren(failure(noKeyGiven()));
    return;
  }
  const problem = urlProblem(name, new URLSearchParams(query));
  if (problem) {
    main.replaceChildren(h("h2", {}, "Not a name this console reads"),
      h("p", {class: "error", role: "alert"}, problem));
    return;
  }
  page.render(main, {
    ...context, catalog: chooser.value, path: rest.join("/"),
    params: new URLSearchParams(query), signal: controller.signal,
  });
  // (Insights with no catalog reads the first tenant, and names it in the URL as it
  // renders: the header said "no catalog yet" above a tenant's funnel)
  placeChooser();
}

/** Why a name the URL gives a page (`parent`, `tenant`) may not go into the paths it
 *  reads, in words; "" when none does or each is a name of what the page reads. */
function urlProblem(page, params) {
  const parent = params.get("parent");
  const tenant = params.get("tenant");
  const parents = page === "insights" ? ["catalog", "tenant"] : ["catalog"];
  const problem = (parent && nameProblem("The parent this address names", parent, ...parents))
    || (tenant && nameProblem("The tenant this address names", tenant, "tenant"));
  return problem ? `${problem} Check the link, or choose from the console's own lists.` : "";
}

/** A tenant's pages read no catalog: the header's chooser, which changed nothing
 *  visible there, steps aside (the key's button stays). Read from the URL, and for the
 *  live feed with no catalog, from whether a tenant holds client events: it follows the
 *  first, below "Catalog: no catalog yet", as if it showed nothing. So it does
 *  while the key may not read (the project's form, or a role's refusal, in place of the
 *  page): it said "not read yet" beside the refusal, as if a read were on its way. */
function placeChooser() {
  const [route, query = ""] = (location.hash.slice(1) || "feed").split("?");
  const name = route.split("/")[0];
  const params = new URLSearchParams(query);
  const tenantPage = name === "talent" ||
    (name === "feed" && (params.has("tenant") || (!chooser.value && known.tenants.length > 0))) ||
    (name === "insights" && (params.get("parent") || "").includes("/tenants/"));
  for (const part of [chooser, document.querySelector("label[for=catalog]")]) {
    part.hidden = tenantPage || denied !== null;
  }
}

chooser.addEventListener("change", () => context.choose(chooser.value));
// "Skip to the page" moves the focus to the page: as a link to #main, it changed the
// hash, and the page shown with it (to the live feed, the page's filter lost).
document.querySelector("a.skip").addEventListener("click", (e) => {
  e.preventDefault();
  main.focus();
});
projectButton.addEventListener("click", () => {
  sessionStorage.removeItem(PROJECT);
  location.reload();  // the first read is refused, and asks which project
});
keyButton.addEventListener("click", () => {
  forgetKey();
  sessionStorage.removeItem(PROJECT);
  location.reload();  // the first call asks for the new key
});
window.addEventListener("hashchange", () => {
  // A control of the page that changed the page (the insights' catalog, the talent
  // page's tenant: a select changes with each arrow key) keeps the focus on the page
  // it shows again; a link's page takes it on the whole.
  const focused = document.activeElement;
  const control = focused !== main && main.contains(focused) ? focused.id : "";
  const left = current?.hash || "";
  show();
  const again = control && document.getElementById(control);
  if (again && main.contains(again)) again.focus({preventScroll: true});
  else {
    main.focus({preventScroll: true});
    const opened = /^event\/([^?]+)/.exec(left);
    if (opened) refocusOpened(opened[1], current.controller.signal);
  }
});

/** Back from the page of event `id`, the focus goes to the link that opened it, once
 *  the page shown again lists it (the feed and the search are read afresh), unless the
 *  keyboard went elsewhere meanwhile: it went to the top of the page, and the feed's
 *  200 events were to be tabbed through again to open the next one. */
function refocusOpened(id, signal) {
  const find = () => [...main.querySelectorAll("a[href^='#event/']")]
    .find((link) => link.getAttribute("href").startsWith(`#event/${id}?`));
  const settled = () => {  // whether there is nothing more to wait for
    if (signal.aborted || document.activeElement !== main) return true;
    const link = find();
    link?.focus();  // (scrolled into view: the place the list was left)
    return Boolean(link);
  };
  if (settled()) return;
  const watching = new MutationObserver(() => settled() && stop());
  const timer = setTimeout(() => stop(), REFOCUS_MS);
  const stop = () => { watching.disconnect(); clearTimeout(timer); };
  signal.addEventListener("abort", stop, {once: true});
  watching.observe(main, {childList: true, subtree: true});
}

refreshChooser();
// (before the first answer, which may wait for the key dialog: a tenant's page showed
// "Catalog: no catalog yet" behind it)
placeChooser();
loadCatalogs();
