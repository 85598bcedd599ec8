// The field view's "Draw a box": drag across a missed cell on the field; the box, in field
// pixels, fills the add-cell form (which a keyboard user can also type into) and is sent with it.
(function () {
  "use strict";
  const svg = document.getElementById("field-overlay");
  const button = document.getElementById("field-draw-button");
  const drawn = document.getElementById("field-drawn");
  const form = document.getElementById("field-add-form");
  if (!svg || !button || !drawn || !form) return;
  const inputs = {
    x: document.getElementById("box-x"),
    y: document.getElementById("box-y"),
    width: document.getElementById("box-width"),
    height: document.getElementById("box-height"),
  };
  const box = svg.viewBox.baseVal;
  let drawing = false;
  let start = null;

  function fieldPoint(event) {
    const point = svg.createSVGPoint();
    point.x = event.clientX;
    point.y = event.clientY;
    const inField = point.matrixTransform(svg.getScreenCTM().inverse());
    return {
      x: Math.min(Math.max(Math.round(inField.x), 0), box.width),
      y: Math.min(Math.max(Math.round(inField.y), 0), box.height),
    };
  }

  function show(rectangle) {
    drawn.setAttribute("x", rectangle.x);
    drawn.setAttribute("y", rectangle.y);
    drawn.setAttribute("width", rectangle.width);
    drawn.setAttribute("height", rectangle.height);
    drawn.setAttribute("visibility", rectangle.width && rectangle.height ? "visible" : "hidden");
  }

  function rectangleTo(end) {
    return {
      x: Math.min(start.x, end.x),
      y: Math.min(start.y, end.y),
      width: Math.abs(end.x - start.x),
      height: Math.abs(end.y - start.y),
    };
  }

  function setDrawing(on) {
    drawing = on;
    svg.classList.toggle("is-drawing", on);
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.textContent = on ? "Drag across the cell…" : "Draw a box";
  }

  button.addEventListener("click", function () { setDrawing(!drawing); });

  // Links of boxes must not open while drawing over them.
  svg.addEventListener("click", function (event) { if (drawing || start) event.preventDefault(); }, true);

  svg.addEventListener("pointerdown", function (event) {
    if (!drawing) return;
    event.preventDefault();
    start = fieldPoint(event);
    svg.setPointerCapture(event.pointerId);
    show({ x: start.x, y: start.y, width: 0, height: 0 });
  });

  svg.addEventListener("pointermove", function (event) {
    if (start) show(rectangleTo(fieldPoint(event)));
  });

  svg.addEventListener("pointerup", function (event) {
    if (!start) return;
    const rectangle = rectangleTo(fieldPoint(event));
    show(rectangle);
    for (const name of ["x", "y", "width", "height"]) inputs[name].value = String(rectangle[name]);
    window.setTimeout(function () { start = null; }, 0);
    setDrawing(false);
    inputs.x.focus();
  });

  // A typed box is drawn too, so what is sent is what is seen.
  form.addEventListener("input", function () {
    const values = ["x", "y", "width", "height"].map(function (name) { return Number(inputs[name].value) || 0; });
    show({ x: values[0], y: values[1], width: values[2], height: values[3] });
  });
})();
