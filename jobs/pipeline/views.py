"""What providers call: webhooks. No session, no CSRF; the signed token in
the URL is the only key, and the body is never trusted."""

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import lifecycle
from .webhooks import webhook_receive


@csrf_exempt
@require_POST
def provider_webhook(request, provider: str, token: str):
    outcome = webhook_receive(provider=provider, token=token)
    if not outcome.accepted:
        return HttpResponse("Unknown webhook.", status=404, content_type="text/plain")
    if outcome.poll:
        # A worker asks the provider at once; the poll loop would within a second too.
        lifecycle.enqueue("jobs.tasks.poll_job", outcome.job_id)
    elif outcome.deferred:
        lifecycle.kick_poller()  # the loop asks when the quiet period ends
    # Answer at once whatever happened: the provider needs no more from us.
    return HttpResponse("OK", content_type="text/plain")
