// Live progress of an adaptation run (data-adaptation-progress-url): polls the JSON endpoint every
// two seconds and reloads the page when the run has finished, so the server renders the result.
// Polls are background requests: they must not keep an idle session alive.
(function () {
  "use strict";
  const POLL_MILLISECONDS = 2000;

  function show(panel, progress) {
    for (const name of ["status_label", "stage", "percent", "message"]) {
      const field = panel.querySelector('[data-field="' + name + '"]');
      if (field) field.textContent = progress[name];
    }
    const bar = panel.querySelector('[data-field="bar"]');
    if (bar) {
      bar.style.width = progress.percent + "%";
      bar.parentElement.setAttribute("aria-valuenow", String(progress.percent));
    }
  }

  function poll(panel) {
    fetch(panel.dataset.adaptationProgressUrl, {
      headers: { "X-HematoVision-Background": "1", Accept: "application/json" },
      credentials: "same-origin",
    })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (progress) {
        show(panel, progress);
        if (progress.finished) {
          if (panel.dataset.finished !== "true") window.location.reload();
          return;
        }
        window.setTimeout(function () { poll(panel); }, POLL_MILLISECONDS);
      })
      .catch(function () {
        window.setTimeout(function () { poll(panel); }, 5 * POLL_MILLISECONDS);
      });
  }

  document.querySelectorAll("[data-adaptation-progress-url]").forEach(poll);
})();
