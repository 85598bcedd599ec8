// Once the server-side idle limit has passed, reload: the server logs the session off and the
// login page appears instead of stale patient data left on screen.
(function () {
  "use strict";
  const seconds = Number(document.body.dataset.idleSeconds || 0);
  if (!seconds) return;
  window.setTimeout(function () { window.location.reload(); }, (seconds + 5) * 1000);
})();
