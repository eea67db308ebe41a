"""The team's gallery: the filtered grid that loads more as the member
scrolls, an item's page, remixing an item, and the owner's share switch."""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from jobs.pipeline.selectors import job_for_owner

from .items import gallery_items
from .services import (
    Cursor,
    GalleryFilterForm,
    RemixUnavailable,
    gallery_item,
    gallery_page,
    item_inputs,
    job_remix,
    job_share_set,
)

TEMPLATE = "jobs/gallery.html"


@login_required
@require_GET
@vary_on_headers("HX-Request")
def gallery(request):
    """The whole page; for htmx, the results (filters changed) or the next
    page of items (the "load more" sentinel came into view)."""
    form = GalleryFilterForm(request.GET if request.GET else None)
    filters = form.filters()
    after = Cursor.parse(request.GET.get("before"))
    page = gallery_page(viewer=request.user, filters=filters, after=after)
    params = filters.params()
    context = {
        "form": form,
        "filters": filters,
        "page": page,
        "items": gallery_items(page.jobs),
        "query": urlencode(params),
        "more_query": urlencode(params | {"before": str(page.next_cursor)})
        if page.has_more
        else "",
        "continued": after is not None,
    }
    clean_url = f"{reverse('gallery')}?{context['query']}" if params else reverse("gallery")
    if request.htmx and not request.htmx.history_restore_request:
        if after is not None:
            return render(request, f"{TEMPLATE}#gallery-more-response", context)
        response = render(request, f"{TEMPLATE}#gallery-results", context)
        # The address bar shows the filters in use, not the form's empty fields.
        response["HX-Push-Url"] = clean_url
        return response
    if after is None and not form.has_errors and "" in request.GET.values():
        return redirect(clean_url)
    return render(request, TEMPLATE, context)


@login_required
@require_GET
def gallery_detail(request, pk: int):
    job = gallery_item(viewer=request.user, pk=pk)
    inputs = item_inputs(job)
    context = {
        "job": job,
        "inputs": inputs,
        "can_remix": bool(inputs) and not job.inputs_purged_at and all(inp.file for inp in inputs),
        "is_owner": job.owner_id == request.user.pk,
    }
    return render(request, "jobs/gallery_detail.html", context)


@login_required
@require_POST
def gallery_remix(request, pk: int):
    """A new job from this one: its inputs copied for the member, its options
    in the Studio form, nothing sent until the member starts it."""
    job = gallery_item(viewer=request.user, pk=pk)
    try:
        url = job_remix(job=job, member=request.user)
    except RemixUnavailable as exc:
        messages.error(request, str(exc))
        return redirect("gallery_detail", pk=job.pk)
    messages.success(
        request,
        f"The files and settings of job #{job.pk} are in the form. "
        "Change anything you like (the seed too), then start the job.",
    )
    return redirect(url)


@login_required
@require_POST
def job_share(request, pk: int):
    """The owner's switch: in the team's gallery, or only for them (and staff)."""
    job = job_for_owner(request.user, pk=pk)
    shared = request.POST.get("shared") == "1"
    job_share_set(job=job, shared=shared)
    announce = (
        f"Job #{job.pk} is in the team's gallery."
        if shared
        else f"Job #{job.pk} is no longer in the team's gallery."
    )
    if request.htmx:
        return render(request, f"{TEMPLATE}#share-toggle", {"job": job, "announce": announce})
    messages.success(request, announce)
    back = request.headers.get("Referer", "")
    if url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(back)
    return redirect("studio")
