"""The Studio page: the new-job form (staged uploads, live cost), the member's
job cards with their live updates, and the cards' actions."""

from datetime import UTC, datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from jobs.credits.ledger import InsufficientCredits, LedgerError, credits_balances
from jobs.credits.pricing import NoRate
from jobs.files import media
from jobs.models import Job, JobMode, Pool
from jobs.models.card_stamps import card_stamp_known
from jobs.pipeline import lifecycle
from jobs.pipeline.selectors import job_for_owner
from jobs.providers.catalogue import label_of
from jobs.providers.routing import provider_sources
from jobs.staff.credit_changes import (
    CreditChangeRefused,
    StarterCreditsRefused,
    staff_to_ask,
    starter_credits_after,
    starter_credits_grant,
)

from .card_tickets import HEADER as CARD_TICKET_HEADER
from .card_tickets import card_ticket, card_ticket_member
from .cards import (
    CARDS_POLL,
    CHANGE_OVERLAP,
    card_for,
    cards_changed_since,
    cards_for_page,
    cards_unchanged_since,
    has_live_jobs,
)
from .forms import (
    MODE_HELP,
    MODE_TITLES,
    ROLES,
    NewJobForm,
    form_quote,
    form_switched,
    new_form_token,
)
from .history import Cursor, JobFilterForm, history_page
from .upload_limits import accepts_files
from .uploads import upload_stage

TEMPLATE = "jobs/studio.html"
# The most files one job takes (a dialog's photo and two clips).
JOB_FILES = max(len(roles) for roles in ROLES.values())


def _form_context(request, form: NewJobForm) -> dict:
    # Only what is in use, in words: no key is decrypted to draw the form.
    sources = provider_sources()
    sandboxed = [
        slug for slug, _label in form.fields["provider"].choices if sources[slug] == "sandbox"
    ]
    return {
        "form": form,
        "modes": [
            {"value": value, "label": label, "current": value == form.current_mode}
            for value, label in JobMode.choices
        ],
        "title": MODE_TITLES[form.current_mode],
        "mode_help": MODE_HELP[form.current_mode],
        "roles": form.role_fields(),
        "quote": form_quote(form),
        "sandboxed": [label_of(slug) for slug in sandboxed],
        "sandbox_url": settings.SANDBOX_URL if sandboxed else "",
    } | _first_run_context(request)


def _first_run_context(request) -> dict:
    """A member with no studio credits sees so above the form: staff with a
    one-click grant to themselves, anyone else with the names to ask."""
    available = credits_balances(user=request.user)[Pool.STUDIO].available
    if available > 0:
        return {"no_credits": False}
    if request.user.is_staff:
        return {
            "no_credits": True,
            "starter_credits": settings.STARTER_CREDITS,
            "starter_after": starter_credits_after(request.user),
        }
    return {"no_credits": True, "ask_staff": staff_to_ask()}


def _filter_form(request) -> JobFilterForm:
    prefix = f"{JobFilterForm.prefix}-"
    bound = any(name.startswith(prefix) for name in request.GET)
    return JobFilterForm(request.GET if bound else None)


def _cards_context(request) -> dict:
    """The job column: a page of the member's history (the newest, or older
    than the address's `before`), filtered as the address says."""
    now = timezone.now()
    filter_form = _filter_form(request)
    filters = filter_form.filters()
    before = Cursor.parse(request.GET.get("before"))
    page = history_page(user=request.user, filters=filters, before=before, now=now)
    return {
        "cards": page.cards,
        "filter_form": filter_form,
        "filters": filters,
        "filters_query": filters.query(),
        "older_query": filters.query(before=str(page.next_cursor)) if page.has_more else "",
        "continued": before is not None,
        "polling": has_live_jobs(request.user),
        "since": _epoch_ms(now),
        # The poller's pass to the cheap "nothing changed" (card_tickets).
        "card_ticket": card_ticket(request),
        "poll_ms": CARDS_POLL,
    }


@login_required
@require_GET
@vary_on_headers("HX-Request")
def studio(request):
    """The whole page; for htmx, the job column (filters changed) or the
    next older page of cards ("Load older")."""
    history = _cards_context(request)
    filters = history["filters"]
    clean_url = reverse("studio") + (f"?{history['filters_query']}" if filters.active else "")
    if request.htmx and not request.htmx.history_restore_request:
        if request.htmx.target == "load-older":
            return render(request, f"{TEMPLATE}#jobs-older", history)
        if request.htmx.target == "job-list":
            response = render(request, f"{TEMPLATE}#job-list", history)
            # The address shows the filters in use, not the form's empty fields.
            response["HX-Push-Url"] = clean_url
            return response
    prefix = f"{JobFilterForm.prefix}-"
    if all(name.startswith(prefix) for name in request.GET) and "" in request.GET.values():
        return redirect(clean_url)  # a filter form sent without htmx
    form = form_switched(owner=request.user, mode=request.GET.get("mode", ""), params=request.GET)
    return render(request, TEMPLATE, _form_context(request, form) | history)


@login_required
@require_GET
def studio_form(request):
    """The form for another kind of video, keeping what still applies."""
    form = form_switched(owner=request.user, mode=request.GET.get("mode", ""), params=request.GET)
    return render(request, f"{TEMPLATE}#new-job", _form_context(request, form))


def _upload_refused(request, message: str, status: int, *, role: str) -> HttpResponse:
    """A file refused before its request was read (too large, or a name too
    long to read): its field says why. The body is not read, so the kind of
    job comes from the upload's address (?mode=)."""
    form = NewJobForm(owner=request.user, initial={"mode": request.GET.get("mode", "")})
    if role not in ROLES[form.current_mode]:
        return HttpResponseBadRequest("This file is not part of this kind of job.")
    context = {"field": form.role_field(role, staged=None, error=message), "form": form}
    return render(request, f"{TEMPLATE}#upload-field", context, status=status)


@accepts_files(1, refusal=_upload_refused)
@login_required
@require_POST
def upload(request, role: str):
    """One file, sent as soon as it is chosen (the page shows its progress).
    Answers with the field: the file kept, or the reason it was refused."""
    form = NewJobForm(request.POST, owner=request.user)
    if role not in ROLES[form.current_mode]:
        return HttpResponseBadRequest("This file is not part of this kind of job.")
    kind, label, _required = ROLES[form.current_mode][role]
    error = None
    staged = None
    uploaded = request.FILES.get(role)
    if uploaded is None:
        error = f"Choose a file for “{label}”."
    else:
        try:
            staged = upload_stage(owner=request.user, kind=kind, uploaded=uploaded)
        except media.MediaError as exc:
            error = str(exc)
    if staged is not None:
        data = request.POST.copy()
        data[f"{role}_upload"] = str(staged.pk)
        form = NewJobForm(data, owner=request.user)
    context = {
        "field": form.role_field(role, staged=staged, error=error),
        "form": form,
        # The cost depends on the files, so it comes along, out of band.
        "quote": form_quote(form),
        "quote_oob": True,
    }
    return render(request, f"{TEMPLATE}#upload-field", context)


@login_required
@require_POST
def quote(request):
    form = NewJobForm(request.POST, owner=request.user)
    context = {"quote": form_quote(form), "form": form}
    return render(request, f"{TEMPLATE}#quote", context)


def _job_refused(request, message: str, status: int) -> HttpResponse:
    """The whole form refused before it was read: the form again for the
    same kind of job (?mode=), saying why where its errors go."""
    form = form_switched(owner=request.user, mode=request.GET.get("mode", ""), params={})
    context = _form_context(request, form) | {"refusal": message}
    if request.htmx:
        return render(request, f"{TEMPLATE}#new-job", context, status=status)
    return render(request, TEMPLATE, context | _cards_context(request), status=status)


@login_required
@require_POST
def provider_changed(request):
    """What depends on the provider: the dialog's speaking order (asked only
    by a provider that takes one), and the cost, out of band. The rest of
    the form, staged files included, stays as it is on the page."""
    data = request.POST.copy()
    if not data.get("dialog_order"):  # the control was not on the page: it comes with the default
        data["dialog_order"] = lifecycle.DIALOG_ORDER_DEFAULT
    form = NewJobForm(data, owner=request.user)
    context = {"form": form, "quote": form_quote(form)}
    return render(request, f"{TEMPLATE}#provider-changed", context)


@accepts_files(JOB_FILES, refusal=_job_refused)
@login_required
@require_POST
def job_new(request):
    form = NewJobForm(request.POST, request.FILES, owner=request.user)
    job = None
    status = 400
    if form.is_valid():
        data = form.cleaned_data
        try:
            job = lifecycle.job_create(
                owner=request.user,
                mode=data["mode"],
                provider=data["provider"],
                resolution=data["resolution"],
                files=form.uploads,
                prompt=data["prompt"],
                seed=data["seed"] if data["seed"] is not None else -1,
                dialog_order=data["dialog_order"],
                form_token=data["form_token"] or "",
                # "You made this already": the "make it again" button sends
                # the earlier job's number, the second yes checked here.
                repeat_check=True,
                repeat_of=_int(request.POST.get("make_again")),
            )
        except lifecycle.MadeAlready as exc:
            form.made_already = exc.earlier
        except (InsufficientCredits, NoRate) as exc:
            form.add_error(None, str(exc))
        except lifecycle.StagedUploadsGone as exc:
            form.add_error(None, str(exc))
            form.already_made = exc.earlier
            status = 409
    if form.made_already is not None:
        status = 409
    if form.already_made is not None:
        # A second post of a form that already made its job: it made nothing,
        # and the form starts afresh, so that new files make a new job.
        status = 409
        form.data = form.data.copy()
        form.data["form_token"] = new_form_token()
    if job is None:
        if request.htmx:
            # The refusal is shown in the form, answered 200 so htmx swaps it
            # whatever the reason (the page's responseHandling swaps 400/413/422,
            # not a 409 for a form that already made its job).
            return render(request, f"{TEMPLATE}#new-job", _form_context(request, form))
        context = _form_context(request, form) | _cards_context(request)
        return render(request, TEMPLATE, context, status=status)

    if not request.htmx:
        messages.success(request, f"Job #{job.pk} is queued. Its card follows it below.")
        return redirect("studio")
    fresh = NewJobForm(
        owner=request.user,
        initial={
            "provider": job.provider,
            "resolution": job.resolution,
            "mode": job.mode,
            "dialog_order": job.dialog_order or lifecycle.DIALOG_ORDER_DEFAULT,
        },
    )
    context = _form_context(request, fresh) | {"announce": f"Job #{job.pk} is queued."}
    return _job_queued(render(request, f"{TEMPLATE}#job-created", context))


def _job_queued(response: HttpResponse) -> HttpResponse:
    """A new job's card comes, like every card, through the page's poller:
    asked for at once, after this answer is applied."""
    return trigger_client_event(response, "cards-poll", after="swap")


@require_GET
def cards(request):
    """The cards that changed since the page's cursor (`since`), out of band:
    a card the page holds replaces its own, a newer one goes first (the page
    sends the creation times of its `newest` and `oldest` card). Headers give
    the next cursor, which the page takes only once it has applied the
    answer, and whether to ask again (not once no job is live).

    The common answer, "nothing changed", comes first and cheap for a page
    holding a valid card ticket (card_tickets): neither the session nor the
    member is loaded for it. Everything else takes the signed-in way."""
    member_id = card_ticket_member(request)
    since = _from_epoch_ms(request.GET.get("since"))
    if member_id is not None and since is not None:
        if cards_unchanged_since(member_id, since, now=timezone.now()):
            return _nothing_changed(request)
    return _cards_signed_in(request)


@login_required
def _cards_signed_in(request):
    since = _from_epoch_ms(request.GET.get("since"))
    if since is None:
        return HttpResponseBadRequest("since must be a time in milliseconds.")
    bounds = {}
    for name in ("newest", "oldest"):
        raw = request.GET.get(name)
        bounds[name] = _int(raw)
        if raw is not None and bounds[name] is None:
            return HttpResponseBadRequest(f"{name} must be a time in milliseconds.")
    now = timezone.now()
    if cards_unchanged_since(request.user.pk, since, now=now):
        response = _nothing_changed(request)
    else:
        response = _cards_update(request, since, bounds, now=now)
    # Every signed-in answer renews the page's ticket for the cheap way.
    response[CARD_TICKET_HEADER] = card_ticket(request)
    return response


def _nothing_changed(request) -> HttpResponse:
    # The common answer, every 1-2 s from every open page with live jobs:
    # nothing to render, and no query on the jobs. The cursor stays put,
    # so the next full answer covers everything since the last one; and
    # polling goes on, as jobs stop being live only by changing.
    response = HttpResponse(b"")
    response["X-Cards-Since"] = str(int(request.GET["since"]))
    response["X-Cards-Polling"] = "1"
    return response


def _cards_update(request, since: datetime, bounds: dict, *, now: datetime) -> HttpResponse:
    # Live first: a job finishing between the two queries is then still
    # polled for once more, instead of stopping before its card is sent.
    live = has_live_jobs(request.user)
    changed = cards_changed_since(request.user, since)
    new, held = cards_for_page(changed, **bounds)
    # A new job joins the column only if the column's filters (sent along
    # from its form) would show it; a card already there is always refreshed.
    filters = _filter_form(request).filters()
    new = [card for card in new if filters.matches(card.job)]
    context = {"new_cards": new, "changed": held, "any_changed": bool(changed)}
    response = render(request, f"{TEMPLATE}#cards-update", context)
    response["X-Cards-Since"] = str(_epoch_ms(now))
    response["X-Cards-Polling"] = "1" if live else "0"
    # Just old enough that the next ask, from this cursor, trusts it.
    card_stamp_known(request.user.pk, as_of_ms=_epoch_ms(now - CHANGE_OVERLAP) - 1)
    return response


def _card_action(request, pk: int, action, done: str):
    job = job_for_owner(request.user, pk=pk)
    try:
        result = action(job)
    except (lifecycle.JobActionRefused, LedgerError, NoRate) as exc:
        if request.htmx:
            card = card_for(Job.objects.get(pk=job.pk))
            return render(request, f"{TEMPLATE}#card-refused", {"card": card, "refusal": str(exc)})
        messages.error(request, str(exc))
        return redirect("studio")
    if not request.htmx:
        messages.success(request, done.format(job=job, new=result))
        return redirect("studio")
    return result


@login_required
@require_POST
def job_cancel(request, pk: int):
    def cancel(job):
        lifecycle.job_cancel(job)
        return None

    result = _card_action(request, pk, cancel, "Job #{job.pk} was cancelled; its credits are back.")
    if isinstance(result, HttpResponse):
        return result
    card = card_for(Job.objects.get(pk=pk))
    return render(request, f"{TEMPLATE}#card-changed", {"card": card, "announce": "Cancelled."})


@login_required
@require_POST
def job_retry(request, pk: int):
    result = _card_action(
        request, pk, lifecycle.job_retry, "Job #{new.pk} tries job #{job.pk} again."
    )
    if isinstance(result, HttpResponse):
        return result
    announce = f"Job #{result.pk} is queued; it tries job #{pk} again."
    return _job_queued(render(request, f"{TEMPLATE}#job-queued", {"announce": announce}))


@login_required
@require_POST
def starter_credits(request):
    """Staff's one-click grant of starter credits to themselves. The form's
    fields come along (htmx), so the form is drawn again as it was, files
    and all, with the new balance and the cost that now fits. The same
    page's button sent twice grants once (its `starter_after`)."""
    after = _int(request.POST.get("starter_after"))
    if after is None:
        return HttpResponseBadRequest("starter_after must be a ledger entry's number.")
    try:
        result = starter_credits_grant(member=request.user, after=after)
    except (StarterCreditsRefused, CreditChangeRefused) as exc:
        if request.htmx:
            return HttpResponse(str(exc), status=403)
        messages.error(request, str(exc))
        return redirect("studio")
    done = f"You granted yourself {result.entry.amount:,} studio credits."
    if not request.htmx:
        messages.success(request, done)
        return redirect("studio")
    # Unbound, from what was sent: the options and staged files, no errors yet.
    form = form_switched(owner=request.user, mode=request.POST.get("mode", ""), params=request.POST)
    context = _form_context(request, form) | {"announce": done}
    return render(request, f"{TEMPLATE}#credits-granted", context)


@login_required
@require_POST
def job_stop_waiting(request, pk: int):
    def stop(job):
        lifecycle.job_stop_waiting(job, by=request.user)
        return None

    result = _card_action(
        request,
        pk,
        stop,
        "You stopped waiting for job #{job.pk}; its credits are back. The provider may still "
        "finish it: the studio then ignores it and charges nothing.",
    )
    if isinstance(result, HttpResponse):
        return result
    card = card_for(Job.objects.get(pk=pk))
    announce = f"Stopped waiting for job #{pk}; its credits are back."
    return render(request, f"{TEMPLATE}#card-changed", {"card": card, "announce": announce})


@login_required
@require_POST
def job_delete(request, pk: int):
    def delete(job):
        lifecycle.job_delete(job)
        return None

    result = _card_action(request, pk, delete, "Job #{job.pk} was deleted.")
    if isinstance(result, HttpResponse):
        return result
    return render(request, f"{TEMPLATE}#card-deleted", {"pk": pk})


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _int(raw: str | None) -> int | None:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


def _from_epoch_ms(raw: str | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(raw) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
