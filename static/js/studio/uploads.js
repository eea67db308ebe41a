/* The Studio's new-job form and its files. A file is sent as soon as it is
   chosen (hx-post on its input) and its field shows the progress; the answer
   replaces the whole field, so "uploading" is simply what the page shows.
   The job cannot be started while a file is on its way. A file travels only
   with its own upload: every other request of the form (the form itself, the
   cost, the provider, another kind of video) leaves the files out, as their
   staged ids already stand for them. */

const FORM = "#new-job-form";

function uploadsPending() {
  return document.querySelectorAll(`${FORM} [data-upload-field].is-uploading`).length;
}

function syncSubmit() {
  const button = document.querySelector(`${FORM} button[type=submit]`);
  if (!button) return;
  const label = button.getAttribute("data-submit-label") || button.textContent;
  if (uploadsPending() > 0) {
    button.setAttribute("aria-disabled", "true");
    button.textContent = "Uploading…";
  } else if (!button.closest("form").dataset.sent) {
    button.removeAttribute("aria-disabled");
    button.textContent = label;
  }
}

function uploadField(elt) {
  return elt && elt.matches && elt.matches("[data-upload]") ? elt.closest("[data-upload-field]") : null;
}

function concernsForm(elt) {
  const form = document.querySelector(FORM);
  if (!form || !elt || !elt.closest) return false;
  const include = elt.getAttribute && elt.getAttribute("hx-include");
  return form.contains(elt) || include === FORM;
}

document.addEventListener("htmx:configRequest", (event) => {
  const elt = event.detail.elt;
  if (!concernsForm(elt)) return;
  const own = uploadField(elt) ? elt.name : null;
  const data = event.detail.formData;
  const files = new Set();
  data.forEach((value, name) => {
    if (value instanceof File && name !== own) files.add(name);
  });
  files.forEach((name) => data.delete(name));
});

document.addEventListener("htmx:beforeRequest", (event) => {
  const field = uploadField(event.detail.elt);
  if (!field) return;
  field.classList.add("is-uploading");
  const box = field.querySelector("[data-upload-progress]");
  if (box) box.hidden = false;
  syncSubmit();
});

document.addEventListener("htmx:xhr:progress", (event) => {
  const field = uploadField(event.target);
  if (!field || !event.detail.lengthComputable) return;
  const percent = Math.floor((event.detail.loaded / event.detail.total) * 100);
  const bar = field.querySelector("[data-upload-progress] progress");
  const label = field.querySelector("[data-upload-percent]");
  if (bar) bar.value = percent;
  if (label) label.textContent = percent < 100 ? `${percent}%` : "Checking the file…";
});

// No answer came to show in the field (ui/requests.js): it says so.
document.addEventListener("request-failed", (event) => {
  const field = uploadField(event.target);
  if (field) {
    field.classList.remove("is-uploading");
    const box = field.querySelector("[data-upload-progress]");
    if (box) box.hidden = true;
    const help = field.querySelector(".field-help");
    if (help) help.textContent = "The upload did not finish. Check your connection and choose the file again.";
  }
  syncSubmit();
});

document.addEventListener("htmx:afterSettle", syncSubmit);

document.addEventListener("submit", (event) => {
  if (event.target.id === "new-job-form" && uploadsPending() > 0) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);
