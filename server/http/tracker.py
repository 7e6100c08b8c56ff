"""`/footfall.js`: the browser tracker, small and dependency-free.

    <script src="https://events.example.com/footfall.js"
            data-parent="projects/shop/locations/global/catalogs/default_catalog"></script>
    <script>
      footfall.track({eventType: "detail-page-view",
                      productDetails: [{product: {id: "sku-1"}}]});
    </script>

`track` fills `visitorId` from a first-party cookie it sets (`_footfall_vid`,
about 13 months), `uri` (cut to Google's 5,000 characters), `referrerUri`,
`pageViewId` (one per page load), sends the event as a pixel to
`userEvents:collect`, and returns a Promise of whether the pixel loaded (a
refused pixel loads too: the reason is in the server's refusals, not in the
page). An event is sent once the task that tracked it has ended; one of a page
being left (hidden, its pagehide, or a navigation away from it begun in that
task: the click of a link to the cart) goes by `navigator.sendBeacon`, which the
browser sends whatever becomes of the page (an image of a page that goes before
its request has left is never fetched). A parent that is not a catalog's name
sends nothing: the Promise says false and the page's console says why. An event
whose JSON is over 16 KiB, more than a GET may carry, is POSTed with
`navigator.sendBeacon` instead (the Promise then says whether the browser queued
it), or, over 64 KiB (more than a beacon takes), with `fetch` (the Promise:
whether it was sent). The endpoint defaults
to where the script came from; set it (and the catalog) with `data-endpoint` /
`data-parent` on the script tag or with `footfall.init({endpoint, parent,
cookieName, cookieDays, cookieDomain, visitorCookie, consent, apiKey, debug})`; with
`data-debug` (or `debug: true`) events go by `fetch` (keepalive as the page is
left), the page's console says why one was refused, its Promise says false, and
window hears a "footfall:refused" event (detail: eventType, event, status, message,
reason, field). `data-visitor-cookie="_ga"`
(`visitorCookie`) takes the visitor from another script's cookie, read and never
written: of Google Analytics' `_ga` (GA1.1.RANDOM.TIME), its client id
RANDOM.TIME, which Google recommends as `visitorId` (the tracker's own cookie, set
while GA's was awaited in vain, goes once GA's has come). `data-consent="wait"`
(`consent: "wait"`) reads and writes no cookie and sends nothing until the page
calls `footfall.consent(true)` (or "granted"): what was tracked meanwhile (1,000
events at most) is held in the page and sent then, or dropped by
`footfall.consent(false)` (or "denied"), which also removes the tracker's cookie;
any other answer changes nothing. A second copy of the script on a page leaves the
first in place. For a script tag with `async` or `defer`, the README's one-line stub
defines `footfall.init`, `track` and `consent` before it: they queue their calls, which
the tracker makes once loaded, in order, each `track` as of the time it was called,
and return Promises of what the calls return then. With auth
on, `data-api-key` (or `apiKey`) is a writer key, sent as the pixel's `key` query
parameter as Google's browser API keys are: a page's key is public, so grant it
writes to the shop's project only.

Google's own Retail snippet (`_gre.push(['apiKey', ...])`, `['logEvent', event]`,
`['projectId', ...]`, `['locationId', ...]`, `['catalogId', ...]`, then a script
tag for Google's script) records here too with its script's `src` set to this one.

Kept as a Python string so that it ships inside the package whatever the install.
"""

from __future__ import annotations

from aiohttp import web

from server.http.console_pages import etag_of, not_modified
from server.http.headers import EVERY

SCRIPT = r"""/* Footfall tracker: footfall.track({eventType: "home-page-view"}) */
(function (window, document) {
  "use strict";
  var script = document.currentScript;
  var attr = function (name) { return script ? script.getAttribute("data-" + name) : null; };
  // A page that loads the tracker twice (its own tag and a tag manager's) keeps the
  // first: a second one took over window.footfall, so the events the first held for
  // consent were never sent, and the page's later events had another pageViewId.
  // A data-consent of the second is heeded all the same: it asks for less. The page's
  // stub (README: "Loading it async"), which queues the calls made before a tracker
  // loaded, is no first copy: it is replaced, its calls made.
  var first = window.footfall;
  var stub = first && first.queue ? first : null;
  if (first && !stub && typeof first.consent === "function" &&
      typeof first.init === "function") {
    var waits = attr("consent") && !first.init({}).consent;
    if (waits) first.init({consent: attr("consent")});
    if (window.console) {
      console.warn("footfall: footfall.js is loaded twice on this page: the first one " +
        "tracks, with its own settings" + (waits ? " (and this one's data-consent)" : "") +
        "; this one does nothing more");
    }
    readGoogleQueue();
    return;
  }
  var config = {
    endpoint: attr("endpoint") || (script && script.src ? new URL(script.src).origin : ""),
    parent: attr("parent") || "projects/default/locations/global/catalogs/default_catalog",
    cookieName: attr("cookie-name") || "_footfall_vid",
    cookieDays: 395,
    // (the shop's domain, shop.com, for a visitor that stays one across its hosts,
    // www.shop.com and checkout.shop.com; else the cookie is this host's alone)
    cookieDomain: attr("cookie-domain") || "",
    // (another's cookie to read the visitor from, never written: "_ga", Google
    // Analytics' client id, which Google recommends as visitorId)
    visitorCookie: attr("visitor-cookie") || "",
    // ("wait": no cookie read or written, no event sent, until footfall.consent(true))
    consent: attr("consent") || "",
    apiKey: attr("api-key") || "",
    debug: Boolean(script && script.hasAttribute("data-debug"))
  };

  function randomId() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return (b + 256).toString(16).slice(1);
    }).join("");
  }

  // Google Analytics' cookies (_ga, its client id, and _ga_CONTAINER, its sessions)
  // are never the tracker's own: named so, the tracker rewrote one as this host's
  // 395-day cookie.
  var GA_COOKIE = /^_ga(_.*)?$/;
  var GA_SESSION = /^_ga_/;
  var OWN_COOKIE = "_footfall_vid";

  function ownCookie() {
    return GA_COOKIE.test(config.cookieName) ? OWN_COOKIE : config.cookieName;
  }

  function ownVisitor() {
    var prefix = ownCookie() + "=";
    var values = function () {
      return document.cookie.split("; ").filter(function (c) {
        return c.indexOf(prefix) === 0;
      }).map(function (c) { return decodeURIComponent(c.slice(prefix.length)); });
    };
    var found = values();
    if (config.cookieDomain && found.length) {
      // A cookie of this host alone, set before cookieDomain was, comes first and
      // would hide the shop's: each host then wrote its own id into the shared one,
      // turn by turn. It goes; the shop's, if any, is read again.
      document.cookie = prefix + "; Path=/; Max-Age=0";
      var shared = values();
      if (shared.length) found = shared;
    }
    var id = found.length ? found[0] : randomId();
    document.cookie = prefix + encodeURIComponent(id) + "; Path=/; Max-Age=" +
      config.cookieDays * 86400 + "; SameSite=Lax" +
      (config.cookieDomain ? "; Domain=" + config.cookieDomain : "") +
      (location.protocol === "https:" ? "; Secure" : "");
    return id;
  }

  // GA's cookie holds GA1.<depth of its domain>.<random>.<time of the first visit>: its
  // client id is the last two parts. Another cookie's value is taken whole.
  var GA_VALUE = /^GA[0-9]+\.[0-9-]+\.([0-9]+\.[0-9]+)$/;
  var WAIT_MS = 2000;  // for the cookie of a script that loads after this one (GA's)
  var gaveUp = false;  // (waited for once on this page: not again)
  var waiting = null;
  var stopWaiting = null;  // (ends the wait at once: the page is being left)
  var VISITOR_MAX = 128;  // characters of a visitorId (Google's rule, and the server's)

  // A page being left sends its events by beacon, which the browser sends whatever
  // becomes of the page: the image of a page that goes before its request has left
  // is never fetched, nor an ordinary fetch. (An add-to-cart whose link leads to the
  // cart was lost, on a slow link to this server, from a page the browser keeps in no
  // back/forward cache.) It is being left from its pagehide; once hidden (a phone's
  // browser sent to the background is often ended there, without a pagehide); and
  // once a navigation away from it has begun (the Navigation API's navigate event: a
  // link's click, a form's submit, location.href = ...), until it is shown again or
  // that navigation stays in the page (a single-page app's own). What waits for a
  // shop's cookie goes then too: its timers may never fire again.
  var leaving = false;
  // (hidden since a visibilitychange: a page opened in a background tab, hidden from
  // its start, is not being left, and waits for GA's cookie as any other)
  var hidden = false;
  function leave() {
    leaving = true;
    if (stopWaiting) stopWaiting();
    sendDue();
  }
  function stay() { leaving = hidden; }
  window.addEventListener("pagehide", leave);
  window.addEventListener("pageshow", stay);
  document.addEventListener("visibilitychange", function () {
    hidden = document.visibilityState === "hidden";
    if (hidden) leave(); else stay();
  });
  if (window.navigation && typeof window.navigation.addEventListener === "function") {
    window.navigation.addEventListener("navigate", function (event) {
      if (!event.destination.sameDocument && !event.downloadRequest) leave();
    });
    window.navigation.addEventListener("navigatesuccess", stay);
    window.navigation.addEventListener("navigateerror", stay);
  }

  // An event is sent once the task that tracked it has ended, by then knowing whether
  // that task began leaving the page (the click of a link to the cart that tracked an
  // add-to-cart): [how it is sent, its Promise's resolve].
  var due = [];
  function sendDue() {
    var now = due;
    due = [];
    now.forEach(function (one) { one[1](one[0]()); });
  }
  function sendLater(go) {
    if (leaving) return go();  // (now: a page being left may run no later task)
    return new Promise(function (resolve) {
      due.push([go, resolve]);
      if (due.length === 1) setTimeout(sendDue, 0);
    });
  }

  function shopCookie() {
    if (config.visitorCookie && !GA_SESSION.test(config.visitorCookie)) {
      return config.visitorCookie;
    }
    if (config.visitorCookie) {
      if (!said.gaSession && window.console) {
        said.gaSession = true;
        console.warn("footfall: visitorCookie " + JSON.stringify(config.visitorCookie) +
          " names one of Google Analytics' session cookies, whose value changes with " +
          "each visit: the visitor is read from _ga, GA's client id");
      }
      return "_ga";
    }
    if (!GA_COOKIE.test(config.cookieName)) return "";
    if (!said.gaName && window.console) {
      said.gaName = true;
      console.warn("footfall: cookieName " + JSON.stringify(config.cookieName) + " names " +
        "Google Analytics' cookie, which the tracker never writes: the visitor is read " +
        "from _ga, as data-visitor-cookie=\"_ga\" does");
    }
    return "_ga";
  }

  function shopVisitor(name) {
    var prefix = name + "=";
    var found = document.cookie.split("; ").filter(function (c) {
      return c.indexOf(prefix) === 0;
    });
    if (!found.length) return "";
    var value = found[0].slice(prefix.length);
    try { value = decodeURIComponent(value); } catch (malformed) { /* kept as it is */ }
    var ga = GA_VALUE.exec(value);
    var id = ga ? ga[1] : value;
    if (id.length <= VISITOR_MAX) return id;
    // The server refuses such a visitorId: every event was lost while track said true.
    if (!said.long && window.console) {
      said.long = true;
      console.error("footfall: the cookie " + name + " holds " + id.length + " characters, " +
        "more than a visitorId's " + VISITOR_MAX + ": the visitor is the tracker's own cookie's");
    }
    return null;
  }

  // GA's client id `id`, read from the cookie `name`, is the visitor from now on: the
  // tracker's own cookie, set while GA's was awaited in vain (GA's came later, with its
  // own consent or its script), goes. It stayed for 13 months, never read again. (Of
  // another shop's cookie, which some pages may lack, it is kept: those pages' visitor.)
  function shopsAlone(name, id) {
    var prefix = ownCookie() + "=";
    if (name === "_ga" && document.cookie.split("; ").some(function (c) {
      return c.indexOf(prefix) === 0;
    })) forget();
    return id;
  }

  // The visitor's id, or a Promise of the shop's id ("" for none) while a shop's cookie
  // is awaited: GA sets _ga when its own script has loaded, after a page's first event
  // as often as not. Without it after WAIT_MS, or once the page is being left, the
  // tracker's own cookie (as without visitorCookie): the caller sets it, so that a no
  // that came meanwhile sets none.
  function visitorId() {
    var name = shopCookie();
    if (!name) return ownVisitor();
    var id = shopVisitor(name);
    if (id === null) return ownVisitor();
    if (id) return shopsAlone(name, id);
    if (gaveUp || leaving) return ownVisitor();
    waiting = waiting || new Promise(function (resolve) {
      var end = Date.now() + WAIT_MS;
      var timer = null;
      stopWaiting = function () {
        clearTimeout(timer);
        var found = shopVisitor(name);
        gaveUp = !found;
        waiting = stopWaiting = null;
        resolve(found ? shopsAlone(name, found) : "");
      };
      (function look() {
        if (shopVisitor(name) !== "" || Date.now() >= end) stopWaiting();
        else timer = setTimeout(look, 50);
      })();
    });
    return waiting;
  }

  // With consent awaited (data-consent="wait"), what is tracked is held here, in this
  // page alone, until footfall.consent says yes (sent then) or no (dropped).
  var consented = null;  // the page's word: true, false, null before it
  var held = [];  // [event, its time, its Promise's resolve]
  // (a page whose visitor never answers tracked on for as long as it stayed open: a
  // single-page shop's scrolls and clicks, each kept, then sent together on a yes)
  var HELD_MAX = 1000;

  // The answers footfall.consent takes: a banner's yes or no, or Google's consent
  // mode's "granted" or "denied". Anything else is none: a "denied" or a "false"
  // (a banner's answer read back from its own cookie) was a yes, truthy as they are.
  var ANSWERS = {granted: true, denied: false};
  function answerOf(given) {
    if (typeof given === "boolean") return given;
    if (typeof given === "string" && Object.prototype.hasOwnProperty.call(ANSWERS, given)) {
      return ANSWERS[given];
    }
    if (window.console) {
      console.error("footfall: footfall.consent(" + (given === undefined ? "" :
        JSON.stringify(given)) + ") is no answer (true or \"granted\" is a yes, false or " +
        "\"denied\" a no): nothing changes");
    }
    return null;
  }

  // Any other data-consent waits too, and says so: a mistyped "wiat" set cookies and
  // sent events before the visitor's yes.
  function allowed() {
    if (consented !== null) return consented;
    if (config.consent && config.consent !== "wait" && !said.consent && window.console) {
      said.consent = true;
      console.warn("footfall: consent " + JSON.stringify(config.consent) + " is not known " +
        "(\"wait\" is): nothing is sent before footfall.consent(true), as with \"wait\"");
    }
    return !config.consent;
  }

  // The tracker's own cookie goes with a no (a yes of an earlier page may have set it).
  function forget() {
    var gone = ownCookie() + "=; Path=/; Max-Age=0";
    document.cookie = gone;
    if (config.cookieDomain) document.cookie = gone + "; Domain=" + config.cookieDomain;
  }

  var pageViewId = randomId();
  var CATALOG = /^projects\/[^\/]+\/locations\/[^\/]+\/catalogs\/[^\/]+$/;
  var parentGiven = Boolean(attr("parent"));

  // Why an event cannot be sent, said once in the page's console: the server answers
  // a pixel of a malformed catalog name with the GIF all the same (the reason only in
  // a header the page cannot read), so every event was lost without a word.
  var said = {};
  function problem() {
    var text = CATALOG.test(config.parent) ? "" : "footfall: the parent " +
      JSON.stringify(config.parent) + " is not a catalog's name " +
      "(projects/PROJECT/locations/global/catalogs/default_catalog): nothing is sent";
    if (text && !said[text]) {
      said[text] = true;
      if (window.console) console.error(text);
    }
    if (!parentGiven && !said.parent) {
      said.parent = true;
      if (window.console) console.warn("footfall: no data-parent on the script tag (nor " +
        "footfall.init({parent})): events go to " + config.parent);
    }
    return text;
  }

  // With debug on, an event goes by fetch, whose answer the page can read (the server
  // exposes X-Footfall-Error), and the page's console says why the server refused it:
  // a pixel's image cannot tell, and the refusals of a wrong key are kept in no console.
  // The Promise of a refused event says false, as of one not sent (it said true: a page
  // checking its tags saw every event go), and the page hears why from a
  // "footfall:refused" event on window; never a rejection, which would change the path
  // of a page that awaits track before it navigates once data-debug is on.
  // (Of a page being left, by a fetch that outlives it: keepalive, as a beacon is, for
  // a body within their 64 KiB; a larger one, which keepalive refuses, ends with it.)
  function sendToRead(url, body, e) {
    var init = body ? {method: "POST", body: body, credentials: "omit"} : {credentials: "omit"};
    if (body && leaving && bytes(body) <= BEACON_MAX) init.keepalive = true;
    return fetch(url, init).then(function (response) {
      var header = response.headers.get("X-Footfall-Error");
      if (!header && response.ok) return true;
      var refusal = header ? Promise.resolve(refusalOfHeader(header)) :
        response.json().then(refusalOfJson, function () {
          return {status: "HTTP " + response.status, message: "", field: ""};
        });
      return refusal.then(function (why) {
        why.eventType = e.eventType;
        why.event = e;
        why.reason = why.status + (why.message ? ": " + why.message : "");
        if (window.console) {
          console.warn("footfall: the server refused the " + JSON.stringify(e.eventType) +
            " event: " + why.reason);
        }
        window.dispatchEvent(new CustomEvent("footfall:refused", {detail: why}));
        return false;
      });
    }, function () {
      // (the event may well be recorded: CORS hides the answer, not the request)
      if (window.console) {
        console.warn("footfall: no answer this page may read from " + config.endpoint +
          " (it is down, or --cors-origins does not list " + location.origin + ")");
      }
      return false;
    });
  }

  // A pixel's refusal, "INVALID_ARGUMENT: user_event.visitor_id: is required; ...": its
  // status, its message, and the field its first violation names (the server writes
  // each as "field: why"; one about the request as a whole names none).
  var FIELD_FIRST = /^([A-Za-z_][A-Za-z0-9_.\[\]]*): /;
  function refusalOfHeader(header) {
    var at = header.indexOf(": ");
    var status = at < 0 ? header : header.slice(0, at);
    var message = at < 0 ? "" : header.slice(at + 2);
    var field = status === "INVALID_ARGUMENT" && FIELD_FIRST.exec(message);
    return {status: status, message: message, field: field ? field[1] : ""};
  }

  // Google's JSON error (a POSTed event's): the field of its BadRequest's first violation.
  function refusalOfJson(answer) {
    var error = answer.error || {};
    var field = "";
    (error.details || []).forEach(function (detail) {
      var first = (detail.fieldViolations || [])[0];
      if (!field && first) field = first.field || "";
    });
    return {status: error.status || "HTTP " + error.code, message: error.message || "",
            field: field};
  }

  // The browser's quota for requests that outlive their page (beacons and keepalive
  // fetches), in bytes of body, shared by those in flight.
  var BEACON_MAX = 65536;
  function bytes(text) {
    return window.TextEncoder ? new TextEncoder().encode(text).length : text.length * 3;
  }

  // Sends `e` (its visitorId filled in) as tracked at `ets` (ms since the epoch, the
  // event's time), at the end of this task: a Promise of whether it went.
  function send(e, ets) {
    return sendLater(function () { return sendNow(e, ets); });
  }

  function sendNow(e, ets) {
    var json = JSON.stringify(e);
    // (an endpoint written with a trailing slash, as origins often are, sent //v2/...,
    // which no route matches)
    var base = String(config.endpoint).replace(/\/+$/, "") + "/v2/" + config.parent +
      "/userEvents:collect";
    var key = config.apiKey ? "key=" + encodeURIComponent(config.apiKey) : "";
    if (json.length > 16384 || leaving) {
      // A GET carries at most 16 KiB of event (Google's rule, and the server's):
      // a larger one is POSTed, as text/plain, which needs no CORS preflight; so is
      // one of a page being left, whose image would not be fetched (with data-debug
      // too: its fetch would be cancelled).
      var post = base + (key ? "?" + key : "");
      var body = JSON.stringify({userEvent: json, ets: String(ets)});
      if (config.debug) return sendToRead(post, body, e);
      if (navigator.sendBeacon && navigator.sendBeacon(post, body)) return Promise.resolve(true);
      // sendBeacon refuses a body over 64 KiB (the browser's quota for requests that
      // outlive their page, shared by the beacons in flight): an order of many
      // lines. An ordinary POST carries it, for as long as the page stays.
      return fetch(post, {method: "POST", body: body, mode: "no-cors", credentials: "omit"})
        .then(function () { return true; }, function () { return false; });
    }
    var url = base + "?user_event=" + encodeURIComponent(json) + "&ets=" + ets +
      (key ? "&" + key : "");
    if (config.debug) return sendToRead(url, null, e);
    return new Promise(function (resolve) {
      var pixel = new Image(1, 1);
      pixel.onload = function () { resolve(true); };
      pixel.onerror = function () { resolve(false); };
      pixel.src = url;
    });
  }

  // Fills in the visitor (read now: after a consent, not before) and sends.
  function identifyAndSend(e, ets) {
    if (e.visitorId) return send(e, ets);
    var id = visitorId();
    if (typeof id === "string") {  // (at once: an event of a closing page goes with it)
      e.visitorId = id;
      return send(e, ets);
    }
    return id.then(function (found) {
      // (a no while the shop's cookie was awaited: nothing is sent, no cookie set)
      if (consented === false) return false;
      e.visitorId = found || ownVisitor();
      return send(e, ets);
    });
  }

  // Tracks `event` as of `ets` (ms since the epoch): now, or when the page called its
  // stub. A Promise of whether it was sent.
  function trackAt(event, ets) {
    if (problem()) return Promise.resolve(false);
    var e = {};
    for (var key in event) e[key] = event[key];
    // (Google takes at most 5,000 characters of it: a page's whole address, longer
    // with a search's filters or an ad's click ids, had every event refused)
    e.uri = e.uri || location.href.slice(0, 5000);
    if (!e.referrerUri && document.referrer) e.referrerUri = document.referrer;
    e.pageViewId = e.pageViewId || pageViewId;
    if (allowed()) return identifyAndSend(e, ets);
    if (consented === false) return Promise.resolve(false);
    if (held.length >= HELD_MAX) {
      if (!said.held && window.console) {
        said.held = true;
        console.warn("footfall: " + HELD_MAX + " events are held for the visitor's " +
          "consent: later ones are dropped until footfall.consent(true)");
      }
      return Promise.resolve(false);
    }
    return new Promise(function (resolve) { held.push([e, ets, resolve]); });
  }

  window.footfall = {
    init: function (options) {
      for (var key in options) if (key in config) config[key] = options[key];
      if (options && options.parent) parentGiven = true;
      return config;
    },
    track: function (event) { return trackAt(event, Date.now()); },
    // The visitor's answer, as the page's consent banner has it (on every page: the
    // tracker keeps it in no cookie). Yes sends what was held; no drops it, sends
    // nothing more on this page (until a yes) and removes the tracker's cookie.
    // Returns the answer the tracker now has (null: none yet).
    consent: function (given) {
      var yes = answerOf(given);
      if (yes === null) return consented;
      consented = yes;
      if (!consented) forget();
      var waited = held;
      held = [];
      waited.forEach(function (one) {
        one[2](consented ? identifyAndSend(one[0], one[1]) : false);
      });
      return consented;
    }
  };

  if (stub) replay(stub);
  readGoogleQueue();

  // The calls the page made through its stub before this loaded ([name, arguments, the
  // time it was called, its Promise's resolve]), made in their order, each track as of
  // its time: the stub's Promises settle with what the calls return. A page that kept
  // the stub's footfall.track in a variable, and calls it later, has it made at once.
  function replay(stub) {
    var call = function (one) {
      var name = one[0];
      var args = one[1];
      var method = window.footfall[name];
      if (name === "track") {
        one[3](trackAt(args[0], typeof one[2] === "number" ? one[2] : Date.now()));
      } else if (typeof method === "function") {
        one[3](method.apply(window.footfall, args));
      } else {
        if (window.console) {
          console.error("footfall: the stub's footfall." + name + " is none of the " +
            "tracker's (init, track and consent are): nothing was done");
        }
        one[3](undefined);
      }
    };
    var queue = stub.queue;
    for (var i = 0; i < queue.length; i++) call(queue[i]);  // (in order, however it grows)
    stub.queue = {push: call};
  }

  // Google's own snippet for Retail ("JavaScript pixel") queues its commands in
  // window._gre and loads Google's script: with that script's src pointed here, the
  // same page records here. Its logEvent comes before projectId in Google's example,
  // so the queue's names are read before its events are sent. (Through
  // window.footfall, which is the first tracker's when the page loaded this one twice.)
  function readGoogleQueue() {
    if (!Array.isArray(window._gre)) return;
    var gre = {apiKey: "", projectId: "", locationId: "global", catalogId: "default_catalog"};
    var greLog = function (event) {
      var names = {};
      if (gre.apiKey) names.apiKey = gre.apiKey;
      if (gre.projectId) {
        names.parent = "projects/" + gre.projectId + "/locations/" + gre.locationId +
          "/catalogs/" + gre.catalogId;
      }
      window.footfall.init(names);
      return window.footfall.track(event);
    };
    var greCommand = function (command, later) {
      var name = command && command[0];
      if (name === "logEvent") {
        if (later) later.push(command[1]); else greLog(command[1]);
      } else if (Object.prototype.hasOwnProperty.call(gre, name)) {
        gre[name] = String(command[1]);
      } else if (window.console) {
        console.warn("footfall: _gre command " + JSON.stringify(name) + " is not known: " +
          "apiKey, projectId, locationId, catalogId and logEvent are");
      }
    };
    var later = [];
    window._gre.forEach(function (command) { greCommand(command, later); });
    later.forEach(greLog);
    window._gre = {push: function () {
      for (var i = 0; i < arguments.length; i++) greCommand(arguments[i], null);
      return 0;
    }};
  }
})(window, document);
"""

_BODY = SCRIPT.encode()
ETAG = etag_of(_BODY)
# (a shared cache may keep it, and its CORS headers depend on the Origin: a copy kept
# for a plain <script>, with none, was served to a page that loads it with
# `crossorigin`, as Subresource Integrity asks, and refused)
_HEADERS = {"Cache-Control": "public, max-age=300", "Vary": "Origin", "ETag": ETAG, **EVERY}


def answer(if_none_match: str | None) -> web.Response:
    """The answer to a GET or HEAD of /footfall.js: the script, or a 304 when the
    request's If-None-Match names its ETag (a browser's copy past its max-age is
    revalidated, not fetched again: some 30 KB a visitor each five minutes)."""
    if not_modified(ETAG, if_none_match):
        return web.Response(status=304, headers=_HEADERS)
    return web.Response(body=_BODY, content_type="application/javascript", charset="utf-8",
                        headers=_HEADERS)
