/* htmx requests. Which answers swap is htmx's responseHandling (the
   htmx-config meta tag in base.html): a refusal the server explains (400,
   413, 422) swaps its partial like a success. What remains here:
   - after a swap, focus moves where the trigger says (data-focus-after);
   - the one afterRequest listener: a request that got no answer to show (a
     dropped connection, a server error) is told to the page by a
     "request-failed" event on the element that sent it, so that the module
     concerned says what happened or lets the member try again.
   No module imports another: in production each is served under a hashed
   name, and an import by plain name would load a second copy. */

document.addEventListener("htmx:afterSettle", (event) => {
  const detail = event.detail || {};
  const trigger = detail.requestConfig ? detail.requestConfig.elt : detail.elt;
  const selector = trigger && trigger.getAttribute && trigger.getAttribute("data-focus-after");
  if (!selector) return;
  const target = document.querySelector(selector);
  if (target) target.focus({ preventScroll: true });
});

document.addEventListener("htmx:afterRequest", (event) => {
  if (event.detail.successful) return;
  const elt = event.detail.elt;
  if (!elt || !elt.isConnected) return;
  elt.dispatchEvent(new CustomEvent("request-failed", { bubbles: true }));
});
