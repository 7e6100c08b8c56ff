// The names a page puts into the paths it reads (a catalog, a tenant, a project),
// checked before it reads with them: a link's `#insights?parent=` went into the path
// as it was, and `../` or `#` in it sent the funnel's POST, with the tab's key, to
// another route. A segment is what the server's names take (server/names.py: no '/',
// white space, control or invisible format character, not '.' or '..'); `route` puts
// each into a path percent-encoded, so that '?', '#', '%' or '\' in one (a catalog a
// writer named so, listed with the others) reads what it names, not another route.

const SEGMENT = String.raw`(?!\.\.?(?:/|$))[^/\s\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e` +
  String.raw`\u2060-\u2064\u2066-\u2069\ufeff]{1,255}`;
const PROJECT = String.raw`projects/(?!-(?:/|$))${SEGMENT}`;  // ("-": every project)
const KINDS = {
  catalog: [new RegExp(`^${PROJECT}/locations/${SEGMENT}/catalogs/${SEGMENT}$`, "u"),
    "a catalog's name (projects/P/locations/L/catalogs/C)"],
  tenant: [new RegExp(`^${PROJECT}/tenants/${SEGMENT}$`, "u"),
    "a tenant's name (projects/P/tenants/T)"],
  project: [new RegExp(`^${PROJECT}$`, "u"), "a project's name (projects/P)"],
};

/** Whether `name` is the name of one of `kinds` ("catalog", "tenant", "project"). */
export function isName(name, ...kinds) {
  return kinds.some((kind) => KINDS[kind][0].test(name));
}

/** Why `name` (`what` says where it comes from) is none of `kinds`, in words; "" when
 *  it is one of them. */
export function nameProblem(what, name, ...kinds) {
  if (isName(name, ...kinds)) return "";
  const shown = JSON.stringify(name.length > 120 ? `${name.slice(0, 120)}…` : name);
  const forms = kinds.map((kind) => KINDS[kind][1]);
  const said = forms.length > 1 ? `${forms.slice(0, -1).join(", ")} or ${forms.at(-1)}`
    : forms[0];
  return `${what}, ${shown}, is not ${said}: nothing was read with it.`;
}

/** The path of a tagged template, each value put in segment by segment, percent-encoded
 *  (route`/console/v1/${catalog}/userEvents`): the browser reads none of a name's
 *  characters as a path's (a '?' ended the path, a '#' began the fragment, "%41" was
 *  'A' and '\' a '/'), and the server decodes each as the name's. */
export function route(texts, ...names) {
  return texts.slice(1).reduce((path, text, i) => path +
    String(names[i]).split("/").map(encodeURIComponent).join("/") + text, texts[0]);
}
