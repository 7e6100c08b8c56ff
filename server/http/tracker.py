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
cookieName, cookieDays, cookieDomain, apiKey, debug})`; with `data-debug` (or `debug: true`)
events go by `fetch` and the page's console says why one was refused. With auth
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

  function visitorId() {
    var prefix = config.cookieName + "=";
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
      e.visitorId = e.visitorId || visitorId();
      // (Google takes at most 5,000 characters of it: a page's whole address, longer
      // with a search's filters or an ad's click ids, had every event refused)
      e.uri = e.uri || location.href.slice(0, 5000);
      if (!e.referrerUri && document.referrer) e.referrerUri = document.referrer;
      e.pageViewId = e.pageViewId || pageViewId;
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
        var body = JSON.stringify({userEvent: json, ets: String(Date.now())});
        if (config.debug) return sendToRead(post, body, e.eventType);
        if (navigator.sendBeacon && navigator.sendBeacon(post, body)) return Promise.resolve(true);
        // sendBeacon refuses a body over 64 KiB (the browser's quota for requests that
        // outlive their page, shared by the beacons in flight): an order of many
        // lines. An ordinary POST carries it, for as long as the page stays.
        return fetch(post, {method: "POST", body: body, mode: "no-cors", credentials: "omit"})
          .then(function () { return true; }, function () { return false; });
      }
      var url = base + "?user_event=" + encodeURIComponent(json) + "&ets=" + Date.now() +
        (key ? "&" + key : "");
      if (config.debug) return sendToRead(url, null, e.eventType);
      return new Promise(function (resolve) {
        var pixel = new Image(1, 1);
        pixel.onload = function () { resolve(true); };
        pixel.onerror = function () { resolve(false); };
        pixel.src = url;
      });
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
