// Reload the page after data-refresh-seconds, while what it shows is still changing.
(function () {
  "use strict";
  var script = document.currentScript;
  var seconds = Number(script && script.dataset.refreshSeconds);
  if (seconds > 0) {
    window.setTimeout(function () {
      window.location.reload();
    }, seconds * 1000);
  }
})();
