"""Pages about the member's own account: credits and API keys."""

import secrets

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.vary import vary_on_headers

from jobs.credits.key_budget import key_max_in_flight, key_spend
from jobs.credits.ledger import open_holds
from jobs.credits.usage import keys_usage, member_spend_by_month
from jobs.models import ApiKey, LedgerEntry, Pool
from jobs.staff.dashboard.chart import spend_chart
from jobs.staff.dashboard.ledger_csv import ledger_csv_lines

from . import api_keys as key_service
from .forms import ApiKeyForm, ApiKeyLimitsForm

# Forms this session may still send to create a key. A reload of the page that
# showed a new key re-sends its form; the spent token makes that a no-op
# instead of a second key (and never shows the first key again).
FORM_TOKENS = "api_key_form_tokens"
OPEN_TABS = 5


def _wants_partial(request, target: str) -> bool:
    # A history restore asks for the whole page even though htmx sends it.
    return (
        bool(request.htmx)
        and not request.htmx.history_restore_request
        and request.htmx.target == target
    )


@login_required
@vary_on_headers("HX-Request")
def credits(request):
    """Both pools (the layout's `balances`), open holds, and the history."""
    pool = request.GET.get("pool", "")
    if pool not in Pool.values:
        pool = ""
    entries = (
        LedgerEntry.objects.filter(account__user=request.user)
        .select_related("account", "hold", "job")
        .order_by("-created_at", "-id")
    )
    if pool:
        entries = entries.filter(account__pool=pool)
    page = Paginator(entries, settings.LEDGER_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "pool": pool,
        "pool_label": Pool(pool).label if pool else "",
        "pools": Pool.choices,
    }
    if _wants_partial(request, "ledger-page"):
        return render(request, "jobs/credits.html#ledger", context)
    context["holds"] = open_holds(user=request.user).order_by("-created_at", "-id")
    context["report"] = months = member_spend_by_month(request.user)
    context["report_chart"] = spend_chart(months, width=720, height=220, label=_month_label)
    context["report_charged"] = sum(m.total for m in months)
    context["report_returned"] = sum(m.total_returned for m in months)
    return render(request, "jobs/credits.html", context)


def _month_label(first) -> str:
    return f"{first:%b %y}"


@login_required
@never_cache
def credits_ledger_csv(request):
    """The member's own ledger, every entry, as CSV (streamed)."""
    response = StreamingHttpResponse(
        ledger_csv_lines(None, user=request.user, staff_names=False),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = 'attachment; filename="my-credits-ledger.csv"'
    return response


def _issue_form_token(request) -> str:
    token = secrets.token_urlsafe(16)
    request.session[FORM_TOKENS] = [
        *request.session.get(FORM_TOKENS, [])[-(OPEN_TABS - 1) :],
        token,
    ]
    return token


def _form_token_is_open(request, token: str) -> bool:
    return bool(token) and token in request.session.get(FORM_TOKENS, [])


def _spend_form_token(request, token: str) -> None:
    request.session[FORM_TOKENS] = [t for t in request.session.get(FORM_TOKENS, []) if t != token]


def _key_for_owner(request, key_id: int) -> ApiKey:
    key = ApiKey.objects.filter(pk=key_id, owner=request.user).first()
    if key is None:
        raise Http404("No such API key.")
    return key


@login_required
@never_cache
@sensitive_variables("raw", "context")
def api_keys(request):
    """List the member's keys; a POST creates one and shows it, this once."""
    new_key = raw = None
    form = ApiKeyForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        token = request.POST.get("form_token", "")
        if not _form_token_is_open(request, token):
            messages.info(
                request,
                "That form had already been sent, so no new key was made. A key is shown "
                "only once: if you did not copy it, revoke it and create another.",
            )
            return redirect("api_keys")
        if form.is_valid():
            _spend_form_token(request, token)
            # POST → render: the key goes into this response only, never into a
            # URL, the session or a log.
            new_key, raw = key_service.api_key_create(
                owner=request.user, name=form.cleaned_data["name"]
            )
            form = ApiKeyForm()
    context = {
        "form": form,
        "form_token": _issue_form_token(request),
        "keys": _keys_with_spend(key_service.api_keys_for_owner(owner=request.user)),
        "new_key": new_key,
        "new_key_raw": raw,
    }
    return render(request, "jobs/api_keys.html", context, status=201 if new_key else 200)


def _key_with_spend(key: ApiKey, *, usage=None) -> ApiKey:
    # What the keys table shows of a key's limits: this period's spend and
    # the limits in force (the studio's defaults where the key names none),
    # and its usage (jobs, charged, returned) this period and the last 12 months.
    key.spend = key_spend(key=key)
    key.usage = usage if usage is not None else keys_usage([key])[key.pk]
    key.rpm = key.rate_limit_per_minute or settings.API_RATE_LIMIT_PER_MINUTE
    key.in_flight = key_max_in_flight(key)
    return key


def _keys_with_spend(keys) -> list[ApiKey]:
    keys = list(keys)
    usage = keys_usage(keys)
    return [_key_with_spend(key, usage=usage[key.pk]) for key in keys]


@login_required
@never_cache
@vary_on_headers("HX-Request")
def api_key_limits(request, key_id: int):
    """GET shows the key's limits form; POST narrows them (never widens).
    With htmx the form swaps in place and a saved key's row is sent back."""
    key = _key_for_owner(request, key_id)
    if key.revoked_at is not None:
        raise Http404("This key is revoked.")
    form = ApiKeyLimitsForm.for_key(key, request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                key = key_service.api_key_limits_narrow(key=key, limits=form.cleaned_data)
            except key_service.ApiKeyError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, "Saved the key's limits.")
                if _wants_partial(request, "limits-form"):
                    # The key's row, updated in place; the form goes (out of band).
                    response = render(
                        request, "jobs/api_key_limits.html#saved", {"key": _key_with_spend(key)}
                    )
                    response["HX-Retarget"] = f"#key-{key.pk}"
                    response["HX-Reswap"] = "outerHTML"
                    return response
                return redirect("api_keys")
        status = 422
    context = {"key": _key_with_spend(key), "form": form}
    if _wants_partial(request, "limits-panel") or _wants_partial(request, "limits-form"):
        return render(request, "jobs/api_key_limits.html#limits-form", context, status=status)
    return render(request, "jobs/api_key_limits.html", context, status=status)


@login_required
@never_cache
def api_key_revoke(request, key_id: int):
    """GET asks for confirmation; POST revokes."""
    key = _key_for_owner(request, key_id)
    if request.method == "POST":
        shown = key_service.api_key_display(key)
        label = f"“{key.name}” ({shown})" if key.name else shown
        if key.revoked_at is not None:
            messages.info(request, f"{label} was already revoked.")
        else:
            key_service.api_key_revoke(key=key)
            messages.success(
                request, f"Revoked {label}. Requests that use it are refused from now on."
            )
        return redirect("api_keys")
    return render(request, "jobs/api_key_revoke.html", {"key": key})
