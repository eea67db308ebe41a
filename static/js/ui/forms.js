/* Forms: one marked data-submit-once cannot be sent twice by a double click;
   it may be sent again when its request got no answer to show
   ("request-failed", from ui/requests.js) or when the page comes back from
   the history. */

function formRelease(form) {
  delete form.dataset.sent;
  form.querySelectorAll("button[aria-disabled]").forEach((button) => {
    button.removeAttribute("aria-disabled");
  });
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.hasAttribute("data-submit-once")) return;
  if (form.dataset.sent) {
    event.preventDefault();
    return;
  }
  form.dataset.sent = "1";
  form.querySelectorAll("button[type=submit]").forEach((button) => {
    button.setAttribute("aria-disabled", "true");
  });
});

window.addEventListener("pageshow", (event) => {
  if (!event.persisted) return;
  document.querySelectorAll("form[data-sent]").forEach(formRelease);
});

document.addEventListener("request-failed", (event) => {
  const form = event.target;
  if (form.tagName === "FORM" && form.dataset.sent) formRelease(form);
});
