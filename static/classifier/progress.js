// Live progress for elements carrying data-job-progress-url: polls the JSON endpoint once a
// second and reloads the page when the job has finished, so the server renders the results.
// Polls are marked as background requests: they must not keep an idle session alive.
(function () {
  "use strict";
  const POLL_MILLISECONDS = 1000;

  function show(panel, progress) {
    for (const name of ["status_label", "done", "total", "failed", "elapsed_seconds"]) {
      const field = panel.querySelector('[data-field="' + name + '"]');
      if (field) field.textContent = progress[name];
    }
    const bar = panel.querySelector('[data-field="bar"]');
    if (bar && progress.total) {
      const finishedCells = progress.done + progress.failed;
      bar.style.width = Math.round((100 * finishedCells) / progress.total) + "%";
      bar.parentElement.setAttribute("aria-valuenow", String(finishedCells));
    }
    const warning = panel.querySelector('[data-field="no_worker"]');
    if (warning) warning.hidden = progress.workers_available !== false;
  }

  function poll(panel) {
    fetch(panel.dataset.jobProgressUrl, {
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

  document.querySelectorAll("[data-job-progress-url]").forEach(poll);
})();
