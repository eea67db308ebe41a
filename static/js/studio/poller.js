/* The Studio cards' live updates. One poller element (#cards-poller), never
   replaced, asks for the cards that changed since its cursor (data-since):
   every 2 s while a job is live (data-polling), every second while one of
   its cards is archiving or inside its predicted finish window
   (data-finish-from to data-finish-until, epoch ms: when the provider most
   likely finishes it), so a finished video shows about a second sooner at
   the cost of cheap "nothing changed" answers; and at once when an answer
   says a job was queued ("cards-poll"). It sends the creation times of the
   newest and oldest card here, so the answer replaces the cards this page
   holds and puts newer ones first (a job made here or elsewhere). The cursor
   moves only once an answer has been applied (its swap: out of band only):
   one that failed is asked for again. Its requests queue one behind the other. */

const SLOW = 2000;
const FAST = 1000;

const poller = document.getElementById("cards-poller");

/* True while a card here is archiving or inside its finish window. */
function hurrying(now) {
  if (document.querySelector("#job-cards > .job-card--archiving")) return true;
  return Array.from(document.querySelectorAll("#job-cards > .job-card[data-finish-from]")).some(
    (card) =>
      Number(card.getAttribute("data-finish-from")) <= now &&
      now <= Number(card.getAttribute("data-finish-until")),
  );
}

if (poller) {
  let lastTick = Date.now();
  window.setInterval(() => {
    if (poller.dataset.polling !== "1") return;
    const now = Date.now();
    // Within 100 ms of 2 s counts as 2 s: timers fire a little early or late.
    if (now - lastTick < SLOW - 100 && !hurrying(now)) return;
    lastTick = now;
    htmx.trigger(document.body, "cards-poll");
  }, FAST);

  poller.addEventListener("htmx:configRequest", (event) => {
    if (event.detail.elt !== poller) return;
    const created = Array.from(
      document.querySelectorAll("#job-cards > .job-card[data-created]"),
      (card) => Number(card.getAttribute("data-created")),
    );
    const params = event.detail.parameters;
    params.since = poller.dataset.since;
    // The card ticket (data-ticket, renewed by answers): its pass to the
    // server's cheap "nothing changed" (jobs/studio/card_tickets.py).
    if (poller.dataset.ticket) event.detail.headers["X-Cards-Ticket"] = poller.dataset.ticket;
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
    const ticket = xhr.getResponseHeader("X-Cards-Ticket");
    if (ticket) poller.dataset.ticket = ticket;
    poller.dataset.since = since;
    poller.dataset.polling = xhr.getResponseHeader("X-Cards-Polling") === "1" ? "1" : "0";
  });
}
