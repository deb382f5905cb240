// The Profile API Settings card: the Copy button, and the confirmations of Re-generate
// and Revoke now as dialogs. Without JavaScript the token stays selectable (Copy stays
// hidden, as it could not work) and both confirmations are pages of their own.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("[data-copy-target]")) {
    const field = document.getElementById(button.dataset.copyTarget);
    button.hidden = false;
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

  // A new token arrives in the response to a POST. Turning that history entry into a
  // plain one makes Reload fetch the card with GET: no resubmission prompt, no second
  // request for a token, and the token is not shown again.
  if (document.querySelector("[data-copy-target]") !== null) {
    window.history.replaceState(null, "", window.location.href);
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
