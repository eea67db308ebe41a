/* The Studio cards' live updates. One poller element (#cards-poller), never
   replaced, asks for the cards that changed since its cursor (data-since):
   every 2 s while a job is live (data-polling), and at once when an answer
   says a job was queued ("cards-poll"). It sends the creation times of the
   newest and oldest card here, so the answer replaces the cards this page
   holds and puts newer ones first (a job made here or elsewhere). The cursor
   moves only once an answer has been applied (its swap: out of band only):
   one that failed is asked for again. Its requests queue one behind the other. */

const poller = document.getElementById("cards-poller");

if (poller) {
  window.setInterval(() => {
    if (poller.dataset.polling === "1") htmx.trigger(document.body, "cards-poll");
  }, 2000);

  poller.addEventListener("htmx:configRequest", (event) => {
    if (event.detail.elt !== poller) return;
    const created = Array.from(
      document.querySelectorAll("#job-cards > .job-card[data-created]"),
      (card) => Number(card.getAttribute("data-created")),
    );
    const params = event.detail.parameters;
    params.since = poller.dataset.since;
    if (created.length) {
      params.newest = Math.max(...created);
      params.oldest = Math.min(...created);
    }
  });

  poller.addEventListener("htmx:afterSwap", (event) => {
    if (event.target !== poller) return;
    const xhr = event.detail.xhr;
    const since = xhr && xhr.getResponseHeader("X-Cards-Since");
    if (!since) return; // not an answer to this question
    poller.dataset.since = since;
    poller.dataset.polling = xhr.getResponseHeader("X-Cards-Polling") === "1" ? "1" : "0";
  });
}
