// Multi-file upload: files chosen in the dialog and files dropped on the zone are gathered into
// the form's file input, so the form submits normally (CSRF token included) and the server
// renders the per-file results.
(function () {
  "use strict";
  const input = document.getElementById("files");
  const zone = document.getElementById("drop-zone");
  const list = document.getElementById("chosen-files");
  if (!input || !zone || !list) return;
  const chosen = new DataTransfer();

  function render() {
    list.replaceChildren();
    Array.from(chosen.files).forEach(function (file) {
      const item = document.createElement("li");
      item.className = "list-group-item d-flex justify-content-between";
      const name = document.createElement("span");
      name.textContent = file.name;
      const size = document.createElement("span");
      size.className = "text-body-secondary small";
      size.textContent = (file.size / 1024).toFixed(1) + " KB";
      item.append(name, size);
      list.append(item);
    });
  }

  function add(files) {
    Array.from(files).forEach(function (file) { chosen.items.add(file); });
    input.files = chosen.files;
    render();
  }

  input.addEventListener("change", function () {
    // The dialog replaces the input's files: merge them with earlier drops instead.
    const picked = Array.from(input.files);
    input.files = chosen.files;
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
})();
