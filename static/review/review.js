// Keyboard review screen: every cell of the slide is in #review-data; reviews are posted with
// fetch and the screen moves on without a page load. Keys: see the help overlay (?).
(function () {
  "use strict";
  const dataElement = document.getElementById("review-data");
  if (!dataElement) return;
  const data = JSON.parse(dataElement.textContent);
  const cells = data.cells;
  const bySlideOrder = cells.slice().sort((a, b) => a.cell_image_id - b.cell_image_id);
  const classByKey = {};
  // Every class's name (inactive ones too: older reviews may name them); keys of the active ones.
  const classNames = Object.assign({}, data.names);
  data.classes.forEach((cls) => {
    cls.keys.forEach((key) => { classByKey[key] = cls.value; });
    classNames[cls.value] = cls.name;
  });

  const $ = (id) => document.getElementById(id);
  const form = $("review-form");
  const labelSelect = $("review-label");
  const reasonInput = $("review-reason");
  const errorBox = $("review-error");
  const hintBox = $("review-hint");
  const cellImage = $("cell-image");
  const gradcamImage = $("gradcam-image");
  const gradcamToggle = $("gradcam-toggle");
  const gradcamStatus = $("gradcam-status");
  const help = $("help-overlay");
  const excludeDetails = $("exclude-details");
  const csrfToken = document.querySelector("[name=csrfmiddlewaretoken]").value;
  let index = data.start;
  let gradcamTimer = null;
  // A flagged cell is confirmed only after it has been on screen this long, and never by a held
  // (auto-repeating) key: holding Enter must not wave flagged cells through unseen.
  const FLAGGED_MIN_MS = data.flagged_min_ms;
  let shownAt = performance.now();
  let confirmableTimer = null;

  function percent(value) { return (value * 100).toFixed(1) + " %"; }

  function text(tag, content, className) {
    const element = document.createElement(tag);
    element.textContent = content;
    if (className) element.className = className;
    return element;
  }

  function describeReview(review) {
    const how = review.bulk ? " in " + review.verification : " individually";
    const what = review.decision === "corrected" ? "Corrected to " + review.label_name : "Confirmed " + review.label_name + how;
    const when = new Date(review.at).toLocaleString();
    if (review.saving) return what + " (saving…)";
    return what + " by " + review.reviewer + ", " + when + (review.reason ? " — " + review.reason : "");
  }

  function renderProbabilities(cell) {
    document.querySelectorAll("#probabilities tr").forEach((row) => {
      const value = cell.probabilities[row.dataset.class];
      const bar = row.querySelector("[data-bar]");
      bar.style.width = (value * 100).toFixed(1) + "%";
      bar.classList.toggle("bg-success", row.dataset.class === cell.label);
      row.querySelector("[data-value]").textContent = row.dataset.class === cell.label ? cell.confidence_text : percent(value);
    });
  }

  function renderReview(cell) {
    const box = $("current-review");
    box.replaceChildren();
    if (cell.review) {
      const badge = cell.review.decision === "corrected" ? "info" : "success";
      box.appendChild(text("div", describeReview(cell.review), "alert alert-" + badge + " py-1 px-2 mb-0 small"));
    } else {
      box.appendChild(text("span", "Not reviewed yet", "badge text-bg-light"));
    }
    const history = $("review-history");
    history.replaceChildren();
    cell.history.forEach((review, position) => {
      const item = text("li", describeReview(review), position === 0 ? "fw-semibold" : "text-body-secondary text-decoration-line-through");
      if (position > 0) item.title = "Superseded by a newer review";
      history.appendChild(item);
    });
    if (!cell.history.length) history.appendChild(text("li", "No reviews.", "text-body-secondary"));
  }

  // An excluded cell takes no review; its exclusion (and a way to withdraw it) is shown instead.
  function renderExclusion(cell) {
    const current = cell.exclusions[0];
    const box = $("current-exclusion");
    box.hidden = !cell.excluded;
    form.hidden = data.locked || cell.excluded;
    if (excludeDetails) {
      excludeDetails.hidden = cell.excluded;
      excludeDetails.open = false;
      $("exclude-form").action = cell.exclude_url;
      $("exclude-form").elements.cell.value = cell.id;
      $("exclude-reason").value = "";
    }
    const includeForm = $("include-form");
    if (includeForm) {
      includeForm.action = cell.include_url;
      includeForm.elements.cell.value = cell.id;
    }
    if (cell.excluded && current) {
      $("exclusion-text").textContent = "Excluded from the differential (" + current.category_name + ") by " +
        current.by + ", " + new Date(current.at).toLocaleString() + " — " + current.reason;
    }
  }

  function openExclusion() {
    if (!excludeDetails || excludeDetails.hidden) return;
    excludeDetails.open = true;
    $("exclude-category").focus();
  }

  function renderNeighbours(cell) {
    const strip = $("neighbours");
    strip.replaceChildren();
    const position = bySlideOrder.indexOf(cell);
    bySlideOrder.slice(Math.max(0, position - 4), position + 5).forEach((neighbour) => {
      const link = document.createElement("button");
      link.type = "button";
      link.className = "neighbour btn p-0 border" + (neighbour === cell ? " border-primary border-3" : "") +
        (neighbour.review || neighbour.excluded ? " is-reviewed" : "");
      link.title = neighbour.label_name + " " + neighbour.confidence_text +
        (neighbour.excluded ? " · excluded" : neighbour.review ? " · reviewed" : "");
      const image = document.createElement("img");
      image.src = neighbour.image_url;
      image.alt = "Neighbouring cell " + neighbour.cell_image_id;
      link.appendChild(image);
      link.addEventListener("click", () => go(cells.indexOf(neighbour)));
      strip.appendChild(link);
    });
  }

  // The server's count after each stored review: it also knows the cells this screen does not
  // show (not classified, excluded) and reviews recorded by colleagues.
  function renderProgress(progress) {
    $("review-progress").textContent = progress.summary;
    const target = $("count-target");
    if (target && progress.target) {
      target.textContent = progress.target.summary;
      target.classList.toggle("text-success", progress.target.reached);
      target.classList.toggle("text-body", !progress.target.reached);
    }
    const signLink = $("sign-link");
    if (signLink) signLink.hidden = !progress.complete;
  }

  function render() {
    const cell = cells[index];
    cellImage.src = cell.image_url;
    $("cell-position").textContent = index + 1;
    $("cell-filename").textContent = cell.filename;
    $("cell-field").hidden = !cell.field_url;
    $("cell-field").href = cell.field_url || "#";
    $("model-version").textContent = cell.model_version;
    $("predicted-label").textContent = cell.label_name;
    $("predicted-confidence").textContent = cell.confidence_text;
    $("flagged").classList.toggle("d-none", !cell.flagged);
    $("flagged").textContent = cell.flag_reason;
    form.action = cell.review_url;
    selectLabel(cell.review ? cell.review.label : cell.label, cell.label);
    reasonInput.value = "";
    errorBox.textContent = "";
    hintBox.textContent = "";
    form.classList.remove("is-correcting");
    closeClassMenu();
    renderProbabilities(cell);
    renderReview(cell);
    renderExclusion(cell);
    renderNeighbours(cell);
    startShowing(cell);
    showGradcam();
    if (cells[index + 1]) new Image().src = cells[index + 1].image_url;  // ready before the key press
  }

  // The form says when Enter may confirm the cell on screen (data-confirmable), for people and tests.
  function startShowing(cell) {
    shownAt = performance.now();
    clearTimeout(confirmableTimer);
    const wait = cell.flagged ? FLAGGED_MIN_MS : 0;
    form.dataset.confirmable = wait ? "false" : "true";
    if (wait) confirmableTimer = setTimeout(() => { form.dataset.confirmable = "true"; }, wait);
  }

  // A review may name a class that is inactive now (not in the menu): then the predicted one is shown.
  function selectLabel(label, fallback) {
    labelSelect.value = label;
    if (labelSelect.value !== label) labelSelect.value = fallback;
  }

  function tooSoon(cell, repeated) {
    if (!cell.flagged) return false;
    return repeated || performance.now() - shownAt < FLAGGED_MIN_MS;
  }

  function go(target) {
    if (target < 0 || target >= cells.length) return;
    index = target;
    reasonInput.blur();
    render();
  }

  function nextUnreviewed() {
    for (let step = 1; step <= cells.length; step++) {
      const candidate = (index + step) % cells.length;
      if (!cells[candidate].review && !cells[candidate].excluded) return go(candidate);
    }
  }

  // Reviews are sent one after another in the background, so the pathologist never waits for
  // the server: the screen moves on at once and shows the verdict as "saving" until it is stored.
  let sending = Promise.resolve();
  let unsaved = 0;

  function record(label, reason, repeated) {
    const cell = cells[index];
    if (data.locked || cell.excluded) return;
    reason = reason.trim();
    if (cell.review && cell.review.label === label && !reason) {
      if (!repeated) go(index + 1);  // the same verdict again would only add a duplicate to the history
      return;
    }
    if (label === cell.label && !reason && tooSoon(cell, repeated)) {
      hintBox.textContent = "Flagged cell (" + cell.flag_reason + "): look at it before confirming; " +
        "release the key and press it again.";
      return;
    }
    if (label !== cell.label && !reason) {
      errorBox.textContent = "Type the reason: a correction needs a reason.";
      reasonInput.focus();
      return;
    }
    const previous = cell.review;
    cell.review = {
      label: label, label_name: classNames[label], decision: label === cell.label ? "confirmed" : "corrected",
      reason: reason, reviewer: "you", at: new Date().toISOString(), saving: true,
      bulk: false, verification: "individual",
    };
    unsaved += 1;
    renderSaving();
    sending = sending.then(() => send(cell, label, reason, previous));
    if (index < cells.length - 1) go(index + 1); else render();
  }

  async function send(cell, label, reason, previous) {
    const body = new FormData();
    body.append("csrfmiddlewaretoken", csrfToken);
    body.append("label", label);
    body.append("reason", reason);
    let failure = "";
    try {
      const response = await fetch(cell.review_url, {
        method: "POST", body: body, headers: { Accept: "application/json" }, credentials: "same-origin",
      });
      const answer = await response.json();
      if (response.ok) {
        cell.review = answer.review;
        cell.history.unshift(answer.review);
        renderProgress(answer.progress);
        // The gallery below moves the cell's tile to its class (gallery.js).
        document.dispatchEvent(new CustomEvent("review:saved", { detail: { prediction: cell.id, review: answer.review } }));
      } else {
        failure = answer.error || "The review was not recorded.";
      }
    } catch (error) {
      failure = "Network error: the review was not recorded.";
    }
    unsaved -= 1;
    renderSaving();
    if (failure) {
      cell.review = previous;
      go(cells.indexOf(cell));
      selectLabel(label, cell.label);
      reasonInput.value = reason;
      errorBox.textContent = failure;
    } else if (cell === cells[index]) {
      renderReview(cell);
    }
  }

  function renderSaving() {
    $("review-saving").textContent = unsaved ? "saving " + unsaved + "…" : "";
  }

  window.addEventListener("beforeunload", (event) => {
    if (unsaved) event.preventDefault();
  });

  function choose(label, repeated) {
    const cell = cells[index];
    if (cell.excluded) return;
    if (label === cell.label) return record(label, "", repeated);
    labelSelect.value = label;
    form.classList.add("is-correcting");
    errorBox.textContent = "";
    hintBox.textContent = "Correcting to " + classNames[label] + ": type the reason, Enter records it, Esc cancels.";
    reasonInput.focus();
  }

  // --- The searchable class menu (/): every class of the lab's list, keyed or not.
  const classMenu = $("class-menu");
  const classSearch = $("class-search");
  const classOptions = Array.from(document.querySelectorAll("[data-class-option]"));

  function visibleOptions() { return classOptions.filter((option) => !option.hidden); }

  function openClassMenu() {
    if (data.locked || cells[index].excluded) return;
    classMenu.hidden = false;
    $("class-menu-button").setAttribute("aria-expanded", "true");
    classSearch.value = "";
    filterClasses();
    classSearch.focus();
  }

  function closeClassMenu() {
    classMenu.hidden = true;
    $("class-menu-button").setAttribute("aria-expanded", "false");
  }

  function filterClasses() {
    const term = classSearch.value.trim().toLowerCase();
    classOptions.forEach((option) => {
      option.hidden = term !== "" && !classNames[option.dataset.classOption].toLowerCase().includes(term);
    });
  }

  function pickClass(label) {
    closeClassMenu();
    choose(label, false);
  }

  $("class-menu-button").addEventListener("click", () => (classMenu.hidden ? openClassMenu() : closeClassMenu()));
  classSearch.addEventListener("input", filterClasses);
  classSearch.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      const first = visibleOptions()[0];
      if (first) pickClass(first.dataset.classOption);
    } else if (event.key === "Escape") {
      event.stopPropagation();
      closeClassMenu();
    }
  });
  classOptions.forEach((option) => option.addEventListener("click", () => pickClass(option.dataset.classOption)));

  function cancelCorrection() {
    const cell = cells[index];
    closeClassMenu();
    selectLabel(cell.review ? cell.review.label : cell.label, cell.label);
    reasonInput.value = "";
    errorBox.textContent = "";
    hintBox.textContent = "";
    form.classList.remove("is-correcting");
    reasonInput.blur();
    if (excludeDetails && excludeDetails.open) {
      excludeDetails.open = false;
      document.activeElement.blur();
    }
  }

  // --- Grad-CAM: computed by a worker; asked for once, then polled while shown.
  async function showGradcam() {
    clearTimeout(gradcamTimer);
    const on = gradcamToggle.checked;
    gradcamImage.classList.toggle("d-none", !on);
    cellImage.classList.toggle("d-none", on);
    gradcamStatus.textContent = "";
    if (!on) return;
    const cell = cells[index];
    gradcamImage.removeAttribute("src");
    const response = await fetch(cell.gradcam_url, { credentials: "same-origin" });
    if (cell !== cells[index] || !gradcamToggle.checked) return;
    if (response.status === 200) {
      // By its URL (the browser has just cached it): the Content-Security-Policy allows images
      // from this origin only, not blob: URLs.
      if (response.body) response.body.cancel();
      gradcamImage.src = cell.gradcam_url;
      return;
    }
    const state = await response.json();
    if (state.status === "absent" || state.status === "failed") {
      if (state.status === "failed" && cell.gradcamRetried) {
        gradcamStatus.textContent = "Grad-CAM failed: " + state.error;
        return;
      }
      cell.gradcamRetried = state.status === "failed";
      await fetch(cell.gradcam_request_url, {
        method: "POST", headers: { "X-CSRFToken": csrfToken }, credentials: "same-origin",
      });
    }
    gradcamStatus.textContent = "computing…";
    gradcamTimer = setTimeout(showGradcam, 1500);
  }

  function openSignPage() {
    const signLink = $("sign-link");
    if (signLink && !signLink.hidden) window.location.assign(signLink.href);
  }

  let focusBeforeHelp = null;

  function toggleHelp(show) {
    if (show) focusBeforeHelp = document.activeElement;
    help.classList.toggle("d-none", !show);
    if (show) help.focus();
    else if (focusBeforeHelp && focusBeforeHelp !== document.body) focusBeforeHelp.focus();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    record(labelSelect.value, reasonInput.value);
  });
  gradcamToggle.addEventListener("change", showGradcam);
  $("help-button").addEventListener("click", () => toggleHelp(true));
  $("help-close").addEventListener("click", () => toggleHelp(false));
  // A click on the dimmed backdrop (outside the card) closes the help, as on any dialog.
  help.addEventListener("click", (event) => { if (event.target === help) toggleHelp(false); });

  // A button or link reached with Tab is activated by Enter or Space, a checkbox toggled by Space,
  // as on any page: those keys must not confirm the cell instead (e.g. on "Bulk confirm").
  function activatesFocused(event) {
    const activation = event.key === "Enter" || event.key === " ";
    return (activation && event.target.matches("button, a[href]")) ||
      (event.key === " " && event.target.matches("input[type=checkbox]"));
  }

  // A tile of the gallery opens its cell here.
  document.addEventListener("gallery:open", (event) => {
    const target = cells.findIndex((cell) => cell.id === event.detail.prediction);
    if (target < 0) return;
    go(target);
    $("review-screen").scrollIntoView({ block: "start" });
    if (document.activeElement) document.activeElement.blur();  // the review keys act on it now
  });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest && event.target.closest("#gallery")) return;  // the gallery's own keys
    const typing = event.target.matches(
      "input[type=text], input[type=search], input[type=number], input:not([type]), textarea, select"
    );
    if (event.key === "Escape") {
      if (!help.classList.contains("d-none")) toggleHelp(false); else cancelCorrection();
      return;
    }
    if (event.key === "Tab" && !help.classList.contains("d-none")) {
      event.preventDefault();  // a modal keeps focus inside: its only control is Close
      $("help-close").focus();
      return;
    }
    if (typing || activatesFocused(event)) return;  // Enter in the reason field submits the form
    if (!help.classList.contains("d-none") && event.key !== "?") return;
    const key = event.key.toLowerCase();
    const confirm = () => record(cells[index].label, "", event.repeat);
    const actions = {
      "?": () => toggleHelp(help.classList.contains("d-none")),
      arrowright: () => go(index + 1), j: () => go(index + 1),
      arrowleft: () => go(index - 1), k: () => go(index - 1),
      u: nextUnreviewed,
      g: () => { gradcamToggle.checked = !gradcamToggle.checked; showGradcam(); },
      enter: confirm, " ": confirm, c: confirm,
      s: openSignPage,
      x: openExclusion,
      "/": openClassMenu,
    };
    if (actions[key]) {
      event.preventDefault();
      actions[key]();
    } else if (classByKey[key] && !data.locked) {
      event.preventDefault();
      choose(classByKey[key], event.repeat);
    }
  });

  renderProgress(data.progress);
  render();
})();
