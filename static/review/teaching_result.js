// Result page of a proficiency attempt: Grad-CAM of a missed cell on request (computed by a
// worker; the page polls until the overlay is stored).
(function () {
  "use strict";
  const tokenInput = document.querySelector("[name=csrfmiddlewaretoken]");
  if (!tokenInput) return;
  const csrfToken = tokenInput.value;

  async function poll(button, image, status, attempts) {
    const response = await fetch(button.dataset.gradcamUrl, { credentials: "same-origin" });
    if (response.status === 200) {
      image.src = button.dataset.gradcamUrl;
      image.classList.remove("d-none");
      status.textContent = "";
      return;
    }
    const body = await response.json();
    if (body.status === "failed") { status.textContent = "Grad-CAM failed: " + body.error; return; }
    status.textContent = "computing…";
    if (attempts > 0) window.setTimeout(() => poll(button, image, status, attempts - 1), 1000);
    else status.textContent = "no worker has made it yet; try again later";
  }

  document.querySelectorAll("[data-gradcam-request-url]").forEach((button) => {
    button.addEventListener("click", async () => {
      const card = button.closest(".missed-cell");
      const status = card.querySelector("[data-gradcam-status]");
      await fetch(button.dataset.gradcamRequestUrl, {
        method: "POST", headers: { "X-CSRFToken": csrfToken }, credentials: "same-origin",
      });
      poll(button, card.querySelector("[data-gradcam-image]"), status, 60);
    });
  });
})();
