// Cell gallery by class (slide page and review screen): select cells with the mouse or the keyboard,
// move them to another class by key or by dragging, or confirm them; one request per action, all or
// nothing (review:slide_gallery_review), then the page is shown again as the server has it.
(function () {
  "use strict";
  const root = document.getElementById("gallery");
  const listbox = document.getElementById("gallery-cells");
  if (!root || !listbox) return;
  const dataElement = document.getElementById("gallery-data");
  const data = dataElement ? JSON.parse(dataElement.textContent) : null;
  const $ = (id) => document.getElementById(id);
  const tiles = () => Array.from(listbox.querySelectorAll("[role=option]"));
  const isSelectable = (tile) => data !== null && tile.dataset.prediction !== undefined;
  const isSelected = (tile) => tile.getAttribute("aria-selected") === "true";
  const selection = () => tiles().filter(isSelected);
  const names = {};
  const classByKey = {};
  (data ? data.classes : []).forEach((cls) => {
    names[cls.value] = cls.name;
    cls.keys.forEach((key) => { classByKey[key] = cls.value; });
  });
  let anchor = null;  // where a Shift range starts
  let pendingFlagged = null;  // {ids, action, label}: flagged cells shown for a look before recording

  // --- Focus (one tile in the tab order at a time) and opening a cell
  function activate(tile, focus) {
    tiles().forEach((other) => { other.tabIndex = other === tile ? 0 : -1; });
    if (focus) tile.focus();
  }

  function open(tile) {
    if (data && data.mode === "review" && tile.dataset.prediction) {
      document.dispatchEvent(new CustomEvent("gallery:open", { detail: { prediction: Number(tile.dataset.prediction) } }));
    } else if (tile.dataset.open) {
      window.location.assign(tile.dataset.open);
    }
  }

  // --- Selection
  function setSelected(tile, on) {
    if (!isSelectable(tile)) return;
    tile.setAttribute("aria-selected", on ? "true" : "false");
    tile.classList.toggle("is-selected", on);
  }

  function selectOnly(tile) {
    tiles().forEach((other) => setSelected(other, other === tile));
    anchor = tile;
  }

  function toggle(tile) {
    setSelected(tile, !isSelected(tile));
    anchor = tile;
  }

  function selectRange(to, add) {
    const all = tiles();
    const from = all.indexOf(anchor && all.includes(anchor) ? anchor : to);
    const end = all.indexOf(to);
    const [low, high] = from < end ? [from, end] : [end, from];
    all.forEach((tile, position) => {
      if (position >= low && position <= high) setSelected(tile, true);
      else if (!add) setSelected(tile, false);
    });
  }

  function selectGroup(tile) {
    const group = tile.closest(".gallery-group");
    tiles().forEach((other) => setSelected(other, other.closest(".gallery-group") === group));
  }

  function changed() {
    hideFlagged();
    const count = selection().length;
    if (!data) return;
    $("gallery-selected").textContent = count ? count + " cell" + (count === 1 ? "" : "s") + " selected" : "No cell selected";
    ["gallery-move", "gallery-confirm", "gallery-clear"].forEach((id) => { $(id).disabled = !count; });
    $("gallery-error").textContent = "";
  }

  // --- Recording: the same rules as the server (review.services.predictions_review_group)
  const targetOf = (tile, action, label) => (action === "confirm" ? tile.dataset.predicted : label);
  // data-reviewed: the class of the cell's current review ("" before any).
  const isCorrection = (tile, target) => target !== tile.dataset.predicted && tile.dataset.reviewed !== target;
  // Confirming the model's class of a flagged cell (not already its verified class) needs a look.
  const needsLook = (tile, target) =>
    tile.dataset.flagged === "true" && target === tile.dataset.predicted && tile.dataset.reviewed !== target;

  function perform(action, label) {
    const chosen = selection();
    if (!chosen.length) return;
    const reason = $("gallery-reason").value.trim();
    const corrections = chosen.filter((tile) => isCorrection(tile, targetOf(tile, action, label)));
    if (corrections.length && !reason) {
      $("gallery-label").value = label;
      $("gallery-hint").textContent = "Moving " + corrections.length + " cell" + (corrections.length === 1 ? "" : "s") +
        " to " + names[label] + ": type the reason, Enter records it, Esc cancels.";
      $("gallery-reason").focus();
      return;
    }
    const flagged = chosen.filter((tile) => needsLook(tile, targetOf(tile, action, label)));
    const ids = flagged.map((tile) => Number(tile.dataset.prediction));
    const seen = pendingFlagged && $("gallery-flagged-ack").checked &&
      ids.every((id) => pendingFlagged.ids.includes(id));
    if (flagged.length && !seen) return showFlagged(flagged, action, label);
    send(action, label, reason, chosen, seen ? ids : []);
  }

  // A flagged cell is shown before it can be confirmed, as on the review screen (FLAGGED_CELL_MIN_MS),
  // and needs a tick that says it was looked at.
  function showFlagged(flagged, action, label) {
    const reasons = Array.from(new Set(flagged.map((tile) => tile.dataset.flagReason))).join("; ");
    pendingFlagged = { ids: flagged.map((tile) => Number(tile.dataset.prediction)), action: action, label: label };
    tiles().forEach((tile) => tile.classList.toggle("needs-look", flagged.includes(tile)));
    $("gallery-flagged-text").textContent = flagged.length + " of the selected cells " + (flagged.length === 1 ? "is" : "are") +
      " flagged (" + reasons + ") and outlined in orange: look at each of them before confirming.";
    $("gallery-flagged-ack-text").textContent = "I looked at each of the " + flagged.length + " flagged cell" + (flagged.length === 1 ? "" : "s");
    const ack = $("gallery-flagged-ack");
    ack.checked = false;
    ack.disabled = true;
    $("gallery-flagged-go").disabled = true;
    $("gallery-flagged").hidden = false;
    root.dataset.confirmable = "false";
    flagged[0].scrollIntoView({ block: "nearest" });
    setTimeout(() => {
      if (!pendingFlagged) return;
      ack.disabled = false;
      root.dataset.confirmable = "true";
    }, data.flagged_min_ms);
  }

  function hideFlagged() {
    pendingFlagged = null;
    if (!data) return;
    $("gallery-flagged").hidden = true;
    $("gallery-flagged-ack").checked = false;
    delete root.dataset.confirmable;
    tiles().forEach((tile) => tile.classList.remove("needs-look"));
  }

  async function send(action, label, reason, chosen, acknowledged) {
    const body = {
      action: action, label: action === "reclassify" ? label : null, reason: reason,
      cells: chosen.map((tile) => ({
        prediction: Number(tile.dataset.prediction), review: tile.dataset.review ? Number(tile.dataset.review) : null,
      })),
      flagged_acknowledged: acknowledged,
    };
    $("gallery-hint").textContent = "Recording " + chosen.length + " cell" + (chosen.length === 1 ? "" : "s") + "…";
    $("gallery-error").textContent = "";
    root.setAttribute("aria-busy", "true");
    let answer = {};
    let response = null;
    try {
      response = await fetch(data.endpoint, {
        method: "POST", body: JSON.stringify(body), credentials: "same-origin",
        headers: {
          "Content-Type": "application/json", Accept: "application/json",
          "X-CSRFToken": document.querySelector("[name=csrfmiddlewaretoken]").value,
        },
      });
      answer = await response.json();
    } catch (error) {
      answer = { error: "Network error: nothing was recorded." };
    }
    root.removeAttribute("aria-busy");
    if (response && response.ok) {
      $("gallery-hint").textContent = answer.message;
      window.location.reload();  // every tile, count and badge as stored
      return;
    }
    $("gallery-hint").textContent = "";
    $("gallery-error").textContent = answer.error || "Nothing was recorded.";
  }

  // --- A review recorded on the review screen above moves its tile (review.js sends the event).
  document.addEventListener("review:saved", (event) => {
    const tile = listbox.querySelector('[data-prediction="' + event.detail.prediction + '"]');
    const review = event.detail.review;
    const group = listbox.querySelector('.gallery-group[data-class="' + review.label + '"]');
    if (!tile || !group) return;
    tile.dataset.review = review.id;
    tile.dataset.reviewed = review.label;
    tile.classList.remove("border-warning", "border-2");
    const caption = tile.querySelector("figcaption");
    caption.replaceChildren();
    const name = document.createElement("strong");
    name.textContent = review.label_name;
    const badge = document.createElement("span");
    badge.className = "badge d-block mt-1 " + (review.decision === "corrected" ? "text-bg-info" : "text-bg-success");
    badge.textContent = review.decision === "corrected" ? "Corrected" : "Verified individually";
    caption.append(name, badge);
    group.querySelector(".gallery-tiles").appendChild(tile);
    counts();
  });

  function counts() {
    listbox.querySelectorAll(".gallery-group").forEach((group) => {
      const count = group.querySelectorAll("[role=option]").length;
      group.querySelector("[data-count]").textContent = count;
      const empty = group.querySelector(".gallery-empty");
      if (empty) empty.hidden = count > 0;
    });
  }

  // --- Mouse
  listbox.addEventListener("click", (event) => {
    const tile = event.target.closest("[role=option]");
    if (!tile) return;
    activate(tile, true);
    if (!data) return;
    if (event.shiftKey) selectRange(tile, event.ctrlKey || event.metaKey);
    else if (event.ctrlKey || event.metaKey) toggle(tile);
    else selectOnly(tile);
    changed();
  });
  listbox.addEventListener("dblclick", (event) => {
    const tile = event.target.closest("[role=option]");
    if (tile) open(tile);
  });

  // --- Dragging a tile (with the selection it is part of) onto another class
  if (data) {
    listbox.addEventListener("dragstart", (event) => {
      const tile = event.target.closest("[role=option]");
      if (!tile || !isSelectable(tile)) return;
      if (!isSelected(tile)) { selectOnly(tile); changed(); }
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", selection().map((t) => t.dataset.prediction).join(","));
    });
    listbox.querySelectorAll(".gallery-group[data-target]").forEach((group) => {
      group.addEventListener("dragover", (event) => {
        event.preventDefault();
        event.dataTransfer.dropEffect = "move";
        group.classList.add("is-drop-target");
      });
      group.addEventListener("dragleave", (event) => {
        if (!group.contains(event.relatedTarget)) group.classList.remove("is-drop-target");
      });
      group.addEventListener("drop", (event) => {
        event.preventDefault();
        group.classList.remove("is-drop-target");
        $("gallery-label").value = group.dataset.class;
        perform("reclassify", group.dataset.class);
      });
    });
  }

  // --- Keyboard, while a tile has the focus
  function step(tile, offset) {
    const all = tiles();
    return all[Math.min(all.length - 1, Math.max(0, all.indexOf(tile) + offset))];
  }

  listbox.addEventListener("keydown", (event) => {
    const tile = event.target.closest("[role=option]");
    if (!tile) return;
    const key = event.key;
    const moves = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };
    let next = null;
    if (key in moves) next = step(tile, moves[key]);
    else if (key === "Home") next = tiles()[0];
    else if (key === "End") next = tiles()[tiles().length - 1];
    if (next) {
      event.preventDefault();
      activate(next, true);
      if (data && event.shiftKey) { selectRange(next, false); changed(); }
      else if (!anchor || !event.shiftKey) anchor = next;
      return;
    }
    if (key === "Enter") { event.preventDefault(); open(tile); return; }
    if (!data) return;
    const lower = key.toLowerCase();
    if (key === " ") { event.preventDefault(); toggle(tile); changed(); return; }
    if (lower === "a" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); selectGroup(tile); changed(); return; }
    if (key === "Escape") { event.preventDefault(); tiles().forEach((t) => setSelected(t, false)); changed(); return; }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (!selection().length && isSelectable(tile)) { selectOnly(tile); changed(); }
    if (lower === "c") { event.preventDefault(); perform("confirm", null); return; }
    if (classByKey[lower]) {
      event.preventDefault();
      $("gallery-label").value = classByKey[lower];
      perform("reclassify", classByKey[lower]);
    }
  });

  if (data) {
    const form = $("gallery-actions");
    form.hidden = false;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      perform("reclassify", $("gallery-label").value);
    });
    form.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        $("gallery-reason").value = "";
        $("gallery-hint").textContent = "";
        hideFlagged();
        if (anchor) activate(anchor, true);
      }
    });
    $("gallery-confirm").addEventListener("click", () => perform("confirm", null));
    $("gallery-clear").addEventListener("click", () => { tiles().forEach((t) => setSelected(t, false)); changed(); });
    $("gallery-flagged-ack").addEventListener("change", (event) => { $("gallery-flagged-go").disabled = !event.target.checked; });
    $("gallery-flagged-go").addEventListener("click", () => {
      if (pendingFlagged) perform(pendingFlagged.action, pendingFlagged.label);
    });
  }
  const first = tiles()[0];
  if (first) activate(first, false);
  counts();
  changed();
})();
