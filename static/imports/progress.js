// An import's page while it runs: asks the server every second how far it is, moves the bar, and reloads the
// page (the report, or what went wrong) once it has finished. Without JavaScript, « Actualiser » does the same.
(function () {
  "use strict";
  var box = document.getElementById("progression");
  if (!box || !window.fetch) { return; }
  var bar = document.getElementById("barre");
  var phase = document.getElementById("etape");
  function show(state) {
    phase.textContent = state.phase || "";
    if (state.percent === null) { bar.removeAttribute("value"); } else { bar.value = state.percent; }
    bar.textContent = (state.percent || 0) + " %";
  }
  function poll() {
    fetch(box.dataset.stateUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (state) {
        if (state && !state.running) { window.location.reload(); return; }
        if (state) { show(state); }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 500);
}());
