// The report page's Print button (the print style sheet in app.css hides the navigation).
document.getElementById("print-report")?.addEventListener("click", () => window.print());
