// Live progress of an inference job (data-job-progress-url, polled every second) or of an
// adaptation run (data-adaptation-progress-url, every two seconds): polls the JSON endpoint and
// reloads the page when the work has finished, so the server renders the results.
// Polls are marked as background requests: they must not keep an idle session alive.
(function () {
  "use strict";

  function fill(panel, progress, names) {
    for (const name of names) {
      const field = panel.querySelector('[data-field="' + name + '"]');
      if (field) field.textContent = progress[name];
    }
  }

  function showJob(panel, progress) {
    fill(panel, progress, ["status_label", "done", "total", "failed", "elapsed_seconds"]);
    const bar = panel.querySelector('[data-field="bar"]');
    if (bar && progress.total) {
      const finishedCells = progress.done + progress.failed;
      bar.style.width = Math.round((100 * finishedCells) / progress.total) + "%";
      bar.parentElement.setAttribute("aria-valuenow", String(finishedCells));
    }
    const warning = panel.querySelector('[data-field="no_worker"]');
    if (warning) warning.hidden = progress.workers_available !== false;
  }

  function showAdaptation(panel, progress) {
    fill(panel, progress, ["status_label", "stage", "percent", "message"]);
    const bar = panel.querySelector('[data-field="bar"]');
    if (bar) {
      bar.style.width = progress.percent + "%";
      bar.parentElement.setAttribute("aria-valuenow", String(progress.percent));
    }
  }

  function poll(panel, url, show, milliseconds) {
    fetch(url, {
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
        window.setTimeout(function () { poll(panel, url, show, milliseconds); }, milliseconds);
      })
      .catch(function () {
        window.setTimeout(function () { poll(panel, url, show, milliseconds); }, 5 * milliseconds);
      });
  }

  document.querySelectorAll("[data-job-progress-url]").forEach(function (panel) {
    poll(panel, panel.dataset.jobProgressUrl, showJob, 1000);
  });
  document.querySelectorAll("[data-adaptation-progress-url]").forEach(function (panel) {
    poll(panel, panel.dataset.adaptationProgressUrl, showAdaptation, 2000);
  });
})();
