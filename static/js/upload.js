// Multi-file upload: files chosen in the dialog and files dropped on the zone are gathered into
// the form's file input, listed with their count and total size, and each can be removed again.
// The form is sent with XMLHttpRequest to show its progress; the server's page with the per-file
// results then replaces this one. Without JavaScript the form posts as a plain form.
(function () {
  "use strict";

  function size(bytes) {
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KB";
    return (bytes / (1024 * 1024)).toFixed(1) + " MB";
  }

  function start() {
    const form = document.getElementById("upload-form");
    const input = document.getElementById("files");
    const zone = document.getElementById("drop-zone");
    const list = document.getElementById("chosen-files");
    const summary = document.getElementById("chosen-summary");
    if (!form || !input || !zone || !list) return;
    let chosen = [];

    function sync() {
      const transfer = new DataTransfer();
      chosen.forEach(function (file) { transfer.items.add(file); });
      input.files = transfer.files;
    }

    function render() {
      list.replaceChildren();
      chosen.forEach(function (file, position) {
        const item = document.createElement("li");
        item.className = "list-group-item d-flex justify-content-between align-items-center gap-2";
        const name = document.createElement("span");
        name.className = "text-break";
        name.textContent = file.name;
        const right = document.createElement("span");
        right.className = "d-flex align-items-center gap-2 text-nowrap";
        const bytes = document.createElement("span");
        bytes.className = "text-body-secondary small";
        bytes.textContent = size(file.size);
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "btn btn-outline-secondary btn-sm";
        remove.textContent = "Remove";
        remove.setAttribute("aria-label", "Remove " + file.name + " from the chosen files");
        remove.addEventListener("click", function () {
          chosen.splice(position, 1);
          sync();
          render();
          const next = list.querySelectorAll("button")[Math.min(position, chosen.length - 1)];
          (next || zone).focus();
        });
        right.append(bytes, remove);
        item.append(name, right);
        list.append(item);
      });
      const total = chosen.reduce(function (sum, file) { return sum + file.size; }, 0);
      summary.hidden = !chosen.length;
      summary.textContent = chosen.length + " file" + (chosen.length === 1 ? "" : "s") + " chosen, " + size(total) + " in all";
    }

    function add(files) {
      chosen = chosen.concat(Array.from(files));
      sync();
      render();
    }

    input.addEventListener("change", function () {
      // The dialog replaces the input's files: add them to the earlier choices instead.
      const picked = Array.from(input.files);
      add(picked);
    });
    ["dragenter", "dragover"].forEach(function (type) {
      zone.addEventListener(type, function (event) {
        event.preventDefault();
        zone.classList.add("is-dragging");
      });
    });
    ["dragleave", "drop"].forEach(function (type) {
      zone.addEventListener(type, function (event) {
        event.preventDefault();
        zone.classList.remove("is-dragging");
      });
    });
    zone.addEventListener("drop", function (event) { add(event.dataTransfer.files); });

    form.addEventListener("submit", function (event) {
      if (!window.XMLHttpRequest || !window.DOMParser) return;  // the plain form post
      event.preventDefault();
      send(form, chosen);
    });
  }

  function send(form, chosen) {
    const progress = document.getElementById("upload-progress");
    const bar = document.getElementById("upload-progress-bar");
    const text = document.getElementById("upload-progress-text");
    const button = document.getElementById("upload-button");
    const request = new XMLHttpRequest();
    progress.hidden = false;
    button.disabled = true;
    request.upload.addEventListener("progress", function (event) {
      if (!event.lengthComputable) return;
      const percent = Math.round((100 * event.loaded) / event.total);
      bar.style.width = percent + "%";
      progress.querySelector("[role=progressbar]").setAttribute("aria-valuenow", percent);
      text.textContent = "Uploading " + chosen.length + " file" + (chosen.length === 1 ? "" : "s") + ": " +
        size(event.loaded) + " of " + size(event.total) + " (" + percent + " %)";
    });
    request.upload.addEventListener("load", function () {
      bar.style.width = "100%";
      bar.classList.add("progress-bar-striped", "progress-bar-animated");
      text.textContent = "Uploaded; checking each image…";
    });
    request.addEventListener("load", function () { show(request.responseText); });
    request.addEventListener("error", function () {
      button.disabled = false;
      bar.classList.add("bg-danger");
      text.textContent = "The upload failed (network error): nothing may have been stored; try again.";
    });
    request.open("POST", form.action || window.location.href);
    request.send(new FormData(form));
  }

  // The server's answer is a whole page: its upload section replaces this one's.
  function show(html) {
    const answer = new DOMParser().parseFromString(html, "text/html");
    const fresh = answer.getElementById("upload-page");
    const current = document.getElementById("upload-page");
    if (!fresh || !current) {
      document.documentElement.replaceWith(answer.documentElement);
      return;
    }
    current.replaceWith(fresh);
    start();
    const first = fresh.querySelector("[role=status], [role=alert]");
    if (first) {
      first.tabIndex = -1;
      first.focus();
    }
  }

  start();
})();
