"""Card tickets: let an open Studio page be told "nothing changed" without
loading its session or its member.

Every open page with live jobs asks for its cards every 1-2 s, and nearly
every answer is the card stamp's empty "nothing changed". Loading the
session and the user for it cost more than the rest of the answer, so the
signed-in path hands the page a ticket: the member's id, signed (its own
salt) and timed, bound to the session cookie's value. The page sends it back
with each ask; a valid one lets the view answer "nothing changed" with only
the stamp lookup. Anything else goes the signed-in way, which hands out a
fresh ticket.

What a ticket can get is never data: at most the empty "nothing changed"
(with "keep asking"), for the member it names, and only together with the
very session cookie it was issued for. A page without JavaScript or with an
old ticket just takes the signed-in way.

Signing out does not revoke a ticket at once: checking that the session
still exists is the lookup the ticket saves. That is acceptable because
signing out deletes the cookie from the browser (its pages then ask without
it, and are sent to sign in), and someone who kept a copy of both the
cookie and the ticket learns only whether that member's cards changed,
for at most MAX_AGE: every card, every other answer needs the session.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core import signing

SALT = "jobs.studio.card_tickets"
# The signed-in path answers a page at least every STAMP_TRUST (30 s; its
# cursor is not trusted longer) and each such answer renews the ticket, so a
# polling page never holds an expired one; short, to bound what a ticket
# that outlived its session can tell (see above).
MAX_AGE = timedelta(minutes=5)
# The request header the page sends it in, and the answer header renewing it:
# a header, not a query parameter, so access logs (which hold the address)
# never hold a ticket. Nothing here logs one either.
HEADER = "X-Cards-Ticket"
_META_KEY = "HTTP_X_CARDS_TICKET"


def _signer(session_cookie: str) -> signing.TimestampSigner:
    # The cookie's value in the salt: a ticket shown with any other cookie
    # (another browser, another member, a session since renewed) fails its
    # signature, and the ticket itself carries nothing of the cookie.
    return signing.TimestampSigner(salt=f"{SALT}:{session_cookie}")


def _session_cookie(request) -> str:
    return request.COOKIES.get(settings.SESSION_COOKIE_NAME, "")


def card_ticket(request) -> str:
    """A ticket for the signed-in member of this request, bound to the
    session's key (the cookie this answer leaves in the browser)."""
    key = request.session.session_key or _session_cookie(request)
    return _signer(key).sign(str(request.user.pk))


def card_ticket_member(request) -> int | None:
    """The member id a valid ticket in this request names, or None (no
    ticket, no session cookie, tampered, expired, or issued for another
    cookie). Reads only the request's headers and cookies: neither the
    session nor the user is loaded."""
    ticket = request.META.get(_META_KEY, "")
    cookie = _session_cookie(request)
    if not ticket or not cookie:
        return None
    try:
        value = _signer(cookie).unsign(ticket, max_age=MAX_AGE)
    except signing.BadSignature:  # SignatureExpired is one
        return None
    return int(value) if value.isdigit() else None
