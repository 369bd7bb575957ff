/* "Browser's time zone": for a user who has chosen no time zone in their Profile, tell the server the
 * zone this browser is in, once, when it differs from the one the page was written in. The server
 * keeps it (POST /profile/browser-zone) and writes the next pages in it; this page stays as written,
 * its zone named in its column headers and in each time's title.
 *
 * base.html loads this file only for such a user, with the page's zone and the address to tell in
 * its data-zone and data-url. No inline script (CSP).
 */
(function () {
  "use strict";

  var SENT_KEY = "ph-browser-zone-sent";  // the zone told in this tab's session: never told twice

  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; }
    catch (e) { return ""; }
  }

  function browserZone() {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return ""; }
  }

  function tell() {
    var script = document.querySelector("script[data-browser-zone-url]");
    var zone = browserZone();
    if (!script || !zone || zone === script.getAttribute("data-zone")) return;
    try {
      if (sessionStorage.getItem(SENT_KEY) === zone) return;  // refused, or the page came from history
      sessionStorage.setItem(SENT_KEY, zone);
    } catch (e) { /* no storage: tell anyway */ }
    var body = new URLSearchParams();
    body.set("zone", zone);
    fetch(script.getAttribute("data-browser-zone-url"), {
      method: "POST", credentials: "same-origin", body: body,
      headers: { "X-CSRFToken": csrfToken() }
    }).catch(function () { /* the next page tells again */
      try { sessionStorage.removeItem(SENT_KEY); } catch (e) { /* nothing to forget */ }
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", tell);
  else tell();
})();
