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
page). A parent that is not a catalog's name sends nothing: the Promise says
false and the page's console says why. An event whose JSON is over 16 KiB, more
than a GET may carry, is POSTed with `navigator.sendBeacon` instead (the Promise
then says whether the browser queued it), or, over 64 KiB (more than a beacon
takes), with `fetch` (the Promise: whether it was sent). The endpoint defaults
to where the script came from; set it (and the catalog) with `data-endpoint` /
`data-parent` on the script tag or with `footfall.init({endpoint, parent,
cookieName, cookieDays, cookieDomain, visitorCookie, consent, apiKey, debug})`; with
`data-debug` (or `debug: true`) events go by `fetch` and the page's console says why
one was refused. `data-visitor-cookie="_ga"` (`visitorCookie`) takes the visitor from
another script's cookie, read and never written: of Google Analytics' `_ga`
(GA1.1.RANDOM.TIME), its client id RANDOM.TIME, which Google recommends as
`visitorId`. `data-consent="wait"` (`consent: "wait"`) reads and writes no cookie and
sends nothing until the page calls `footfall.consent(true)`: what was tracked
meanwhile is held in the page and sent then, or dropped by `footfall.consent(false)`,
which also removes the tracker's cookie. With auth
on, `data-api-key` (or `apiKey`) is a writer key, sent as the pixel's `key` query
parameter as Google's browser API keys are: a page's key is public, so grant it
writes to the shop's project only.

Google's own Retail snippet (`_gre.push(['apiKey', ...])`, `['logEvent', event]`,
`['projectId', ...]`, `['locationId', ...]`, `['catalogId', ...]`, then a script
tag for Google's script) records here too with its script's `src` set to this one.

Kept as a Python string so that it ships inside the package whatever the install.
"""

SCRIPT = r"""/* Footfall tracker: footfall.track({eventType: "home-page-view"}) */
(function (window, document) {
  "use strict";
  var script = document.currentScript;
  var attr = function (name) { return script ? script.getAttribute("data-" + name) : null; };
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

  function shopCookie() {
    if (config.visitorCookie) return config.visitorCookie;
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
    return ga ? ga[1] : value;
  }

  // The visitor's id, or a Promise of it while a shop's cookie is awaited: GA sets
  // _ga when its own script has loaded, after a page's first event as often as not.
  // Without it after WAIT_MS, the tracker's own cookie (as without visitorCookie).
  function visitorId() {
    var name = shopCookie();
    if (!name) return ownVisitor();
    var id = shopVisitor(name);
    if (id || gaveUp) return id || ownVisitor();
    waiting = waiting || new Promise(function (resolve) {
      var end = Date.now() + WAIT_MS;
      (function look() {
        var found = shopVisitor(name);
        if (found || Date.now() >= end) {
          gaveUp = !found;
          waiting = null;
          resolve(found || ownVisitor());
        } else {
          setTimeout(look, 50);
        }
      })();
    });
    return waiting;
  }

  // With consent awaited (data-consent="wait"), what is tracked is held here, in this
  // page alone, until footfall.consent says yes (sent then) or no (dropped).
  var consented = null;  // the page's word: true, false, null before it
  var held = [];  // [event, its time, its Promise's resolve]

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
  function sendToRead(url, body, eventType) {
    var init = body ? {method: "POST", body: body, credentials: "omit"} : {credentials: "omit"};
    return fetch(url, init).then(function (response) {
      var header = response.headers.get("X-Footfall-Error");
      var reason = (header || response.ok) ? Promise.resolve(header) :
        response.json().then(function (answer) {
          return answer.error.status + ": " + answer.error.message;
        }, function () { return "HTTP " + response.status; });
      return reason.then(function (why) {
        if (why && window.console) {
          console.warn("footfall: the server refused the " + JSON.stringify(eventType) +
            " event: " + why);
        }
        return true;
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

  // Sends `e` (its visitorId filled in) as tracked at `ets` (ms since the epoch, the
  // event's time): a Promise of whether it went.
  function send(e, ets) {
    var json = JSON.stringify(e);
    // (an endpoint written with a trailing slash, as origins often are, sent //v2/...,
    // which no route matches)
    var base = String(config.endpoint).replace(/\/+$/, "") + "/v2/" + config.parent +
      "/userEvents:collect";
    var key = config.apiKey ? "key=" + encodeURIComponent(config.apiKey) : "";
    if (json.length > 16384) {
      // A GET carries at most 16 KiB of event (Google's rule, and the server's):
      // a larger one is POSTed, as text/plain, which needs no CORS preflight.
      var post = base + (key ? "?" + key : "");
      var body = JSON.stringify({userEvent: json, ets: String(ets)});
      if (config.debug) return sendToRead(post, body, e.eventType);
      if (navigator.sendBeacon && navigator.sendBeacon(post, body)) return Promise.resolve(true);
      // sendBeacon refuses a body over 64 KiB (the browser's quota for requests that
      // outlive their page, shared by the beacons in flight): an order of many
      // lines. An ordinary POST carries it, for as long as the page stays.
      return fetch(post, {method: "POST", body: body, mode: "no-cors", credentials: "omit"})
        .then(function () { return true; }, function () { return false; });
    }
    var url = base + "?user_event=" + encodeURIComponent(json) + "&ets=" + ets +
      (key ? "&" + key : "");
    if (config.debug) return sendToRead(url, null, e.eventType);
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
      e.visitorId = found;
      return send(e, ets);
    });
  }

  window.footfall = {
    init: function (options) {
      for (var key in options) if (key in config) config[key] = options[key];
      if (options && options.parent) parentGiven = true;
      return config;
    },
    track: function (event) {
      if (problem()) return Promise.resolve(false);
      var e = {};
      for (var key in event) e[key] = event[key];
      // (Google takes at most 5,000 characters of it: a page's whole address, longer
      // with a search's filters or an ad's click ids, had every event refused)
      e.uri = e.uri || location.href.slice(0, 5000);
      if (!e.referrerUri && document.referrer) e.referrerUri = document.referrer;
      e.pageViewId = e.pageViewId || pageViewId;
      var ets = Date.now();
      if (allowed()) return identifyAndSend(e, ets);
      if (consented === false) return Promise.resolve(false);
      return new Promise(function (resolve) { held.push([e, ets, resolve]); });
    },
    // The visitor's answer, as the page's consent banner has it (on every page: the
    // tracker keeps it in no cookie). Yes sends what was held; no drops it, sends
    // nothing more on this page and removes the tracker's cookie.
    consent: function (yes) {
      consented = Boolean(yes);
      if (!consented) forget();
      var waited = held;
      held = [];
      waited.forEach(function (one) {
        one[2](consented ? identifyAndSend(one[0], one[1]) : false);
      });
      return consented;
    }
  };

  // Google's own snippet for Retail ("JavaScript pixel") queues its commands in
  // window._gre and loads Google's script: with that script's src pointed here, the
  // same page records here. Its logEvent comes before projectId in Google's example,
  // so the queue's names are read before its events are sent.
  var gre = {apiKey: "", projectId: "", locationId: "global", catalogId: "default_catalog"};
  function greLog(event) {
    if (gre.apiKey) config.apiKey = gre.apiKey;
    if (gre.projectId) {
      config.parent = "projects/" + gre.projectId + "/locations/" + gre.locationId +
        "/catalogs/" + gre.catalogId;
      parentGiven = true;
    }
    return window.footfall.track(event);
  }
  function greCommand(command, later) {
    var name = command && command[0];
    if (name === "logEvent") {
      if (later) later.push(command[1]); else greLog(command[1]);
    } else if (Object.prototype.hasOwnProperty.call(gre, name)) {
      gre[name] = String(command[1]);
    } else if (window.console) {
      console.warn("footfall: _gre command " + JSON.stringify(name) + " is not known: " +
        "apiKey, projectId, locationId, catalogId and logEvent are");
    }
  }
  if (Array.isArray(window._gre)) {
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
