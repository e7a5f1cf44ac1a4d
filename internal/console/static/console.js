// The console's only script (served from /console/static, the one source
// the Content-Security-Policy allows). Three small jobs: the overview's
// live numbers, "select all" on dead-letter tables, and refreshing an
// event's trail while it is in flight. Pages work without it.
"use strict";

(function () {
  function liveLoop(section) {
    var status = document.getElementById("live-status");
    function tick() {
      fetch(section.getAttribute("data-src"), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) {
          if (r.status === 401) { window.location.assign("/console/login"); return null; }
          return r.json().then(function (body) { return { ok: r.ok, body: body }; });
        })
        .then(function (res) {
          if (!res) { return; }
          if (!res.ok) { status.textContent = "stale: " + (res.body.error || "stats unavailable"); return; }
          section.querySelectorAll("[data-live]").forEach(function (el) {
            var v = res.body[el.getAttribute("data-live")];
            if (typeof v === "number") {
              if (el.getAttribute("data-live").indexOf("latency") < 0) {
                el.textContent = v > 0 && v < 1 ? v.toFixed(2) : v.toFixed(1);
              } else {
                el.textContent = v > 0 ? v.toFixed(0) : "\u2014"; // no Graph request in the window
              }
            }
          });
          status.textContent = "updated " + new Date().toLocaleTimeString();
          section.setAttribute("data-updated", res.body.at || "");
        })
        .catch(function () { status.textContent = "stale: the console did not answer"; });
    }
    tick();
    window.setInterval(tick, 5000);
  }

  function selectAll(box) {
    box.addEventListener("change", function () {
      box.closest("table").querySelectorAll('input[name="seq"]').forEach(function (c) { c.checked = box.checked; });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var live = document.getElementById("live");
    if (live) { liveLoop(live); }
    document.querySelectorAll("input.select-all").forEach(selectAll);
    var trail = document.querySelector("[data-refresh]");
    if (trail) {
      window.setTimeout(function () { window.location.reload(); }, 1000 * Number(trail.getAttribute("data-refresh")));
    }
  });
})();
