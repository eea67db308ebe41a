"""The member's page for one key's outbound webhooks: its signing secret
(rotate), the recent deliveries (status code, attempts, next try, body
sent), resend one, send a test event. Thin: jobs/api/webhooks.py does the work.
htmx posts get the deliveries partial back; plain posts are redirected."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_POST

from jobs.models import ApiKey, WebhookDelivery
from jobs.net.fetch import UnsafeUrl

from . import webhooks as service

TEMPLATE = "jobs/api_key_webhooks.html"


def _key(request, key_id: int) -> ApiKey:
    key = ApiKey.objects.filter(pk=key_id, owner=request.user).first()
    if key is None:
        raise Http404("No such API key.")
    return key


@sensitive_variables("context")
def _page(request, key: ApiKey, *, status: int = 200, test_error: str = "", test_url: str = ""):
    deliveries = list(service.webhook_deliveries_for_key(key=key))
    for d in deliveries:
        d.body_sent = json.dumps(d.payload, indent=2)
    signing = service.webhook_secrets_signing(key)
    context = {
        "key": key,
        "deliveries": deliveries,
        "secret": signing[0],
        "grace_until": key.previous_secret_until if len(signing) > 1 else None,
        "retry_schedule": service.retry_schedule_text(),
        "test_error": test_error,
        "test_url": test_url,
    }
    if request.htmx and not request.htmx.history_restore_request:
        return TemplateResponse(request, f"{TEMPLATE}#deliveries", context, status=status)
    return render(request, TEMPLATE, context, status=status)


@login_required
@never_cache
def key_webhooks(request, key_id: int):
    return _page(request, _key(request, key_id))


@login_required
@require_POST
def key_webhook_test(request, key_id: int):
    key = _key(request, key_id)
    url = request.POST.get("url", "").strip()
    try:
        if not url.startswith(("http://", "https://")):
            raise UnsafeUrl("Only http:// and https:// addresses can be used.")
        service.webhook_test_create(key=key, url=url)
    except UnsafeUrl as exc:
        return _page(request, key, status=422, test_error=str(exc), test_url=url)
    if not request.htmx:
        messages.success(request, "A test event is on its way.")
        return redirect("api_key_webhooks", key.pk)
    return _page(request, key)


@login_required
@require_POST
def key_webhook_resend(request, key_id: int, delivery_id: int):
    key = _key(request, key_id)
    delivery = WebhookDelivery.objects.filter(pk=delivery_id, api_key=key).first()
    if delivery is None:
        raise Http404("No such delivery.")
    service.webhook_delivery_resend(delivery)
    if not request.htmx:
        messages.success(request, f"{delivery.event_id} will be sent again now.")
        return redirect("api_key_webhooks", key.pk)
    return _page(request, key)


@login_required
@require_POST
def key_webhook_rotate(request, key_id: int):
    key = _key(request, key_id)
    if key.revoked_at is not None:
        raise Http404("This key is revoked.")
    service.webhook_secret_rotate(key)
    messages.success(
        request,
        "New signing secret made. The previous one signs too for 24 hours, "
        "so your receivers can switch.",
    )
    return redirect("api_key_webhooks", key.pk)
