// The Profile API Settings card: the Copy button, and the re-generate confirmation as a
// dialog. Without JavaScript the token stays selectable and re-generating asks on a page.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("[data-copy-target]")) {
    const field = document.getElementById(button.dataset.copyTarget);
    button.addEventListener("click", async () => {
      field.select();
      try {
        await navigator.clipboard.writeText(field.value);
      } catch {
        document.execCommand("copy");
      }
      button.textContent = "Copied";
    });
  }

  for (const button of document.querySelectorAll("[data-confirm]")) {
    const dialog = document.getElementById(button.dataset.confirm);
    if (dialog === null || window.bootstrap === undefined) continue;
    button.addEventListener("click", (event) => {
      event.preventDefault();
      window.bootstrap.Modal.getOrCreateInstance(dialog).show();
    });
  }
});
