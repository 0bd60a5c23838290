// SplitLab console: follows an analysis' progress (the only script; served by the analyzer).
"use strict";
(function () {
  function follow(job) {
    var url = job.getAttribute("data-status-url");
    var state = document.getElementById("state");
    var step = document.getElementById("step");
    var bar = document.getElementById("progress");
    function poll() {
      fetch(url, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.json(); })
        .then(function (p) {
          state.textContent = p.state;
          step.textContent = p.step || "";
          bar.max = p.total || 1;
          bar.value = p.done || 0;
          if (p.state === "done" || p.state === "failed") {
            window.location.reload();
          } else {
            window.setTimeout(poll, 1000);
          }
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    }
    window.setTimeout(poll, 1000);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var job = document.getElementById("job");
    if (job) {
      var s = job.getAttribute("data-state");
      if (s === "queued" || s === "running") { follow(job); }
    }
  });
})();
