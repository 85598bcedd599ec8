// Proficiency attempt: the trainee classifies each cell with the review screen's class keys
// (#take-data carries the same key map); answers are posted in the background. No reference and
// no model answer are in the page: they appear on the result page once the attempt is finished.
(function () {
  "use strict";
  const dataElement = document.getElementById("take-data");
  if (!dataElement) return;
  const data = JSON.parse(dataElement.textContent);
  const items = data.items;
  const classByKey = {};
  const classNames = {};
  data.classes.forEach((cls) => {
    cls.keys.forEach((key) => { classByKey[key] = cls.value; });
    classNames[cls.value] = cls.name;
  });
  const $ = (id) => document.getElementById(id);
  const csrfToken = document.querySelector("[name=csrfmiddlewaretoken]").value;
  const unsureToggle = $("unsure-toggle");
  let index = Math.max(0, items.findIndex((item) => !item.answer));
  let saving = 0;
  const pending = new Set();

  function render() {
    const item = items[index];
    $("cell-image").src = item.image_url;
    $("cell-position").textContent = String(item.position);
    $("cell-count").textContent = String(items.length);
    $("chosen-label").textContent = item.answer ? classNames[item.answer] : "none yet";
    $("unsure-badge").hidden = !item.unsure;
    unsureToggle.checked = item.unsure;
    document.querySelectorAll("#class-buttons [data-class]").forEach((button) => {
      const chosen = button.dataset.class === item.answer;
      button.classList.toggle("btn-primary", chosen);
      button.classList.toggle("btn-outline-primary", !chosen);
    });
    const answered = items.filter((entry) => entry.answer).length;
    $("answered-count").textContent = answered + " of " + items.length + " answered";
  }

  function save(item) {
    const request = post(item);
    pending.add(request);
    request.finally(() => pending.delete(request));
  }

  async function post(item) {
    saving += 1;
    $("take-saving").textContent = "saving…";
    const body = new URLSearchParams({ item: item.id, label: item.answer, unsure: item.unsure ? "1" : "0" });
    body.append("csrfmiddlewaretoken", csrfToken);
    try {
      const response = await fetch(data.answer_url, {
        method: "POST", body: body, credentials: "same-origin", headers: { Accept: "application/json" },
      });
      const answer = await response.json();
      $("take-error").textContent = response.ok ? "" : answer.error;
      if (!response.ok && /time limit/.test(answer.error)) window.location.reload();
    } catch (error) {
      $("take-error").textContent = "Not saved (" + error + "); choose the class again.";
    } finally {
      saving -= 1;
      $("take-saving").textContent = saving ? "saving…" : "";
    }
  }

  function choose(label) {
    const item = items[index];
    item.answer = label;
    save(item);
    if (index < items.length - 1) index += 1;
    render();
  }

  function toggleUnsure() {
    const item = items[index];
    item.unsure = !item.unsure;
    if (item.answer) save(item);
    render();
  }

  function move(step) {
    index = Math.min(items.length - 1, Math.max(0, index + step));
    render();
  }

  function nextUnanswered() {
    for (let offset = 1; offset <= items.length; offset += 1) {
      const candidate = (index + offset) % items.length;
      if (!items[candidate].answer) { index = candidate; break; }
    }
    render();
  }

  document.querySelectorAll("#class-buttons [data-class]").forEach((button) => {
    button.addEventListener("click", () => choose(button.dataset.class));
  });
  unsureToggle.addEventListener("change", () => { items[index].unsure = !unsureToggle.checked; toggleUnsure(); });
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    if (event.target.tagName === "INPUT" && event.target.type !== "checkbox") return;
    const key = event.key.toLowerCase();
    if (classByKey[key]) choose(classByKey[key]);
    else if (key === "f") toggleUnsure();
    else if (key === "arrowright" || key === "j") move(1);
    else if (key === "arrowleft" || key === "k") move(-1);
    else if (key === "u") nextUnanswered();
    else return;
    event.preventDefault();
  });
  // Hand in only once every answer has reached the server.
  $("finish-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const unanswered = items.filter((item) => !item.answer).length;
    if (unanswered && !window.confirm(unanswered + " cells have no answer and will count as missed. Finish?")) return;
    await Promise.allSettled(Array.from(pending));
    event.target.submit();
  });

  const timeLeft = $("time-left");
  if (timeLeft) {
    const deadline = new Date(timeLeft.dataset.deadline).getTime();
    const tick = () => {
      const seconds = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      timeLeft.textContent = Math.floor(seconds / 60) + ":" + String(seconds % 60).padStart(2, "0");
      if (seconds === 0) window.location.reload();
    };
    tick();
    window.setInterval(tick, 1000);
  }
  render();
})();
