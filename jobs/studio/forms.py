"""The new-job form. Files arrive either staged one by one (the page uploads
each on selection, with a progress bar) or, without JavaScript, with the form
itself; either way each is decoded and measured before it is accepted, and a
good file is kept (as a staged upload) when something else in the form is wrong."""

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django import forms
from django.urls import reverse

from jobs.credits.ledger import credits_balances
from jobs.credits.pricing import NoRate, Quote, quote, terms_text
from jobs.files import media
from jobs.models import DialogOrder, Job, JobMode, Pool, Rate, Resolution, Upload, UploadKind
from jobs.pipeline.lifecycle import (
    DIALOG_ORDER_DEFAULT,
    StagedUploadsGone,
    billed_seconds,
    dialog_order_for,
    expected_render,
)
from jobs.providers import catalogue
from jobs.templatetags.studio_tags import duration

from .uploads import upload_stage

# What each mode takes: role -> (kind, label, required)
ROLES = {
    JobMode.DIALOG: {
        "image": (UploadKind.IMAGE, "Photo", True),
        "left_audio": (UploadKind.AUDIO, "Left speaker's audio", True),
        "right_audio": (UploadKind.AUDIO, "Right speaker's audio", True),
    },
    JobMode.TALKING_PHOTO: {
        "image": (UploadKind.IMAGE, "Photo", True),
        "audio": (UploadKind.AUDIO, "Audio", True),
    },
    JobMode.VIDEO_DUB: {
        "video": (UploadKind.VIDEO, "Video", True),
        "audio": (UploadKind.AUDIO, "New audio", True),
        "mask": (UploadKind.IMAGE, "Mask image (optional)", False),
    },
}
ALL_ROLES = {role: spec for roles in ROLES.values() for role, spec in roles.items()}
ACCEPT = {
    UploadKind.IMAGE: "image/jpeg,image/png,image/webp",
    UploadKind.AUDIO: "audio/*,.mp3,.wav,.m4a,.aac,.ogg,.oga,.flac",
    UploadKind.VIDEO: "video/*,.mp4,.mov,.webm,.mkv",
}
HINTS = {
    UploadKind.IMAGE: "JPEG, PNG or WebP.",
    UploadKind.AUDIO: "MP3, WAV, M4A, OGG or FLAC, up to 10 minutes.",
    UploadKind.VIDEO: "MP4, MOV, WebM or MKV, up to 10 minutes.",
}
SEED_MAX = 2**31 - 1
ORDER_MISSING = "Choose whether they take turns or speak at the same time."
ID_MAX = 2**63 - 1  # the largest id the database holds


def new_form_token() -> str:
    return uuid.uuid4().hex


def providers_for(mode: str) -> list[tuple[str, str]]:
    """Providers that make `mode` and have a price for it: a provider without
    a price cannot be quoted, so it is not offered."""
    priced = set(Rate.objects.values_list("provider", "model").distinct())
    making = catalogue.provider_choices_for(mode)  # the mode's default first
    offered = [(s, label) for s, label in making if (s, catalogue.model_for(s, mode)) in priced]
    # With no price at all, still name the providers; the quote says what is missing.
    return offered or making


def _default_provider(mode: str) -> str | None:
    offered = providers_for(mode)
    return offered[0][0] if offered else None


@dataclass(frozen=True)
class RoleField:
    """A file field of the form as the page shows it."""

    role: str
    label: str
    kind: str
    accept: str
    required: bool
    hint: str
    staged: Upload | None
    error: str | None

    @property
    def input_id(self) -> str:
        return f"id_{self.role}"


@dataclass(frozen=True)
class ProviderOption:
    """One provider's price and render time for the job as the form stands
    (a dialog's quote shows each offered provider side by side)."""

    slug: str
    label: str
    quote: Quote
    expected: timedelta
    current: bool


@dataclass(frozen=True)
class QuoteView:
    """What the form shows about the cost, whatever is filled in so far."""

    quote: Quote | None
    missing: str = ""  # what to add before a cost can be shown
    problem: str = ""  # why no cost can be given
    clips: str = ""  # which audio is billed, when it is not plain: " (the longer clip)"
    available: int | None = None
    # How long the provider is expected to render it (lifecycle.expected_render).
    expected: timedelta | None = None
    # A dialog's offered providers side by side, when there are two or more.
    options: list[ProviderOption] = field(default_factory=list)

    @property
    def enough(self) -> bool:
        return (
            self.quote is not None
            and self.available is not None
            and (self.available >= self.quote.credits)
        )

    @property
    def detail(self) -> str:
        """How the cost comes about, in one sentence:
        "6.3 s of audio → 2 × 5 s = 10 s billed at 15 credits per 5 s.",
        "3.0 s of audio → 5 s billed (the 5 s minimum) at 4 credits per second."."""
        q = self.quote
        if q is None:
            return ""
        if q.unit_seconds == 1:
            billed = f"{q.billed_seconds} s billed"
        else:
            billed = f"{q.units} × {q.unit_seconds} s = {q.billed_seconds} s billed"
        if q.minimum_applies:
            billed += f" (the {q.min_seconds} s minimum)"
        elif q.rounded_up and q.unit_seconds == 1:
            billed += " (rounded up to whole seconds)"
        rate = terms_text(
            credits_per_unit=q.credits_per_unit, unit_seconds=q.unit_seconds, min_seconds=0
        )
        return f"{duration(q.seconds)} of audio{self.clips} → {billed} at {rate}."


def upload_id(raw) -> int | None:
    """An upload's id as read from a form or an address, or None when it
    cannot be one: not a whole number, or beyond what the database holds."""
    try:
        value = int(str(raw))
    except ValueError:
        return None
    return value if 1 <= value <= ID_MAX else None


# The form shows these above its fields: the kind of video is a hidden field.
MODE_ERROR = (
    "Choose the kind of video (dialog, talking photo or video dub), then send the form again."
)


class NewJobForm(forms.Form):
    mode = forms.ChoiceField(
        choices=JobMode.choices,
        initial=JobMode.DIALOG,
        error_messages={"required": MODE_ERROR, "invalid_choice": MODE_ERROR},
    )
    provider = forms.ChoiceField(choices=[])
    resolution = forms.ChoiceField(
        choices=Resolution.choices, initial=Resolution.P480, widget=forms.RadioSelect
    )
    prompt = forms.CharField(
        required=False,
        max_length=1000,
        widget=forms.Textarea(
            attrs={
                "rows": 2,
                "placeholder": ("e.g. speaks happily, with cheerful expressions"),
            }
        ),
        help_text="Optional: expressions and poses you want.",
    )
    seed = forms.IntegerField(
        initial=-1,
        min_value=-1,
        max_value=SEED_MAX,
        help_text="-1 picks a random seed; any other number repeats a result.",
    )
    # One per rendered form: a second post of the same form finds the job the
    # first one made (lifecycle.StagedUploadsGone) instead of making another.
    form_token = forms.RegexField(regex=r"^[0-9a-f]{32}$", required=False, widget=forms.HiddenInput)
    # Asked only for a dialog whose provider takes it (catalogue.takes_dialog_order).
    dialog_order = forms.ChoiceField(
        label="How do they speak?",
        choices=DialogOrder.choices,
        initial=DIALOG_ORDER_DEFAULT,
        required=False,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": ORDER_MISSING},
        help_text=(
            "Taking turns: the left clip, then the right one; both lengths are billed. "
            "At the same time: both clips play from the start; the longer is billed."
        ),
    )

    def __init__(self, *args, owner, staged_ids: dict[str, int] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner
        # Uploads carried over to an unbound form (switching the kind of video).
        self.staged_ids = staged_ids or {}
        self.uploads: dict[str, Upload] = {}
        # Set when this same form already made a job (a second post of it).
        self.already_made: Job | None = None
        # Set when the member made a job of the same files and options lately
        # (selectors.job_made_already): making it again needs a second yes.
        self.made_already: Job | None = None
        if not self.is_bound:
            self.initial.setdefault("form_token", new_form_token())
        self._wire_controls()
        self.fields["provider"].choices = providers_for(self.current_mode)
        offered = [slug for slug, _label in self.fields["provider"].choices]
        if self.initial.get("provider") not in offered:
            self.initial["provider"] = offered[0]
        for role, (kind, label, _required) in ALL_ROLES.items():
            self.fields[role] = forms.FileField(
                label=label,
                required=False,
                widget=forms.ClearableFileInput(attrs={"accept": ACCEPT[kind]}),
            )
            self.fields[f"{role}_upload"] = forms.IntegerField(
                required=False, min_value=1, max_value=ID_MAX, widget=forms.HiddenInput
            )

    def _wire_controls(self) -> None:
        """htmx on the controls themselves (never on what their answers
        replace, so a quick second change is never lost): the provider asks
        for the speaking order and the cost; the options ask for the cost.
        The files stay out (static/js/studio/uploads.js): their staged ids
        stand for them."""
        common = {
            "hx-trigger": "change",
            "hx-swap": "outerHTML",
            "hx-include": "#new-job-form",
            "hx-sync": "#quote:replace",
        }
        self.fields["provider"].widget.attrs |= common | {
            "hx-post": reverse("studio_provider"),
            "hx-target": "#dialog-order",
        }
        for name in ("resolution", "dialog_order"):
            self.fields[name].widget.attrs |= common | {
                "hx-post": reverse("studio_quote"),
                "hx-target": "#quote",
            }

    @property
    def current_mode(self) -> str:
        value = self.data.get("mode") if self.is_bound else self.initial.get("mode")
        return value if value in JobMode.values else JobMode.DIALOG

    @property
    def current_provider(self) -> str:
        choices = [slug for slug, _label in self.fields["provider"].choices]
        value = self.data.get("provider") if self.is_bound else self.initial.get("provider")
        return value if value in choices else choices[0]

    @property
    def asks_dialog_order(self) -> bool:
        """The page shows the speaking order: a dialog, with a provider that takes one."""
        return bool(dialog_order_for(provider=self.current_provider, mode=self.current_mode))

    @property
    def current_dialog_order(self) -> str:
        """The order the cost is quoted for: the one chosen, else the default
        ("" when the provider takes none)."""
        if not self.asks_dialog_order:
            return ""
        value = self.data.get("dialog_order") if self.is_bound else self.initial.get("dialog_order")
        return value if value in DialogOrder.values else DIALOG_ORDER_DEFAULT

    @property
    def kept_dialog_order(self) -> str:
        """The order chosen while it was asked, kept (hidden) while it is not,
        so that coming back to lipsync.studio shows the member's choice."""
        value = self["dialog_order"].value()
        return value if value in DialogOrder.values else ""

    def role_fields(self) -> list["RoleField"]:
        """The file fields of the current mode, with what is staged for each."""
        staged = staged_for(self)
        return [
            self.role_field(role, staged=staged.get(role), error=self._role_error(role))
            for role in ROLES[self.current_mode]
        ]

    def role_field(self, role: str, *, staged: Upload | None, error: str | None) -> "RoleField":
        # The current mode's wording: "audio" is "Audio" in a talking photo
        # but "New audio" in a dub (ALL_ROLES keeps only the last of them).
        kind, label, required = ROLES[self.current_mode].get(role, ALL_ROLES[role])
        return RoleField(
            role=role,
            label=label,
            kind=kind,
            accept=ACCEPT[kind],
            required=required,
            hint=HINTS[kind],
            staged=staged,
            error=error,
        )

    def _role_error(self, role: str) -> str | None:
        if not self.is_bound or not hasattr(self, "_errors") or self._errors is None:
            return None
        errors = self._errors.get(role)
        return errors[0] if errors else None

    def clean(self):
        cleaned = super().clean()
        mode = cleaned.get("mode")
        if mode is None:
            return cleaned
        provider = cleaned.get("provider")
        if provider and mode not in catalogue.modes_of(provider):
            self.add_error(
                "provider",
                f"{catalogue.label_of(provider)} does not make "
                f"{JobMode(mode).label.lower()} videos.",
            )
        if provider and dialog_order_for(provider=provider, mode=mode):
            if not cleaned.get("dialog_order") and "dialog_order" not in self.errors:
                self.add_error("dialog_order", ORDER_MISSING)
        else:
            # Not shown for this job, so not used, whatever a stale page sent.
            self.errors.pop("dialog_order", None)
            cleaned["dialog_order"] = ""
        for role, (kind, label, required) in ROLES[mode].items():
            upload = self._upload_for(role, kind, cleaned)
            if upload is not None:
                self.uploads[role] = upload
            elif required and role not in self.errors:
                self.add_error(role, f"Choose a file for “{label}”.")
        # A field of another mode must not ride along unseen.
        for role in ALL_ROLES.keys() - ROLES[mode].keys():
            if cleaned.get(role) or cleaned.get(f"{role}_upload"):
                self.add_error(
                    None,
                    f"“{ALL_ROLES[role][1]}” is not used by "
                    f"{JobMode(mode).label.lower()} jobs; remove it.",
                )
        return cleaned

    def _earlier_job(self) -> Job | None:
        """The job this very form (its token) already made, if any."""
        token = self.cleaned_data.get("form_token")
        return Job.objects.filter(owner=self.owner, form_token=token).first() if token else None

    def _upload_for(self, role: str, kind: str, cleaned) -> Upload | None:
        uploaded = cleaned.get(role)
        if uploaded:
            try:
                upload = upload_stage(owner=self.owner, kind=kind, uploaded=uploaded)
            except media.MediaError as exc:
                self.add_error(role, str(exc))
                return None
            # Keep the good file for the next round, should anything else fail.
            self.data = self.data.copy()
            self.data[f"{role}_upload"] = str(upload.pk)
            return upload
        pk = cleaned.get(f"{role}_upload")
        if pk:
            upload = Upload.objects.filter(pk=pk, owner=self.owner, kind=kind).first()
            if upload is None:
                earlier = self._earlier_job()
                if earlier is None:
                    self.add_error(
                        role,
                        "That file is no longer kept here: it went into a job or "
                        "expired. Choose the file again.",
                    )
                elif self.already_made is None:
                    # Not expired: this same form already made a job of it.
                    self.already_made = earlier
                    self.add_error(None, str(StagedUploadsGone(earlier=earlier)))
            return upload
        return None


def staged_for(form: NewJobForm) -> dict[str, Upload]:
    """Uploads named in the form's hidden fields, for showing what is kept."""
    ids = {}
    for role in ALL_ROLES:
        raw = form.data.get(f"{role}_upload") if form.is_bound else form.staged_ids.get(role)
        pk = upload_id(raw)
        if pk is not None:
            ids[role] = pk
    found = Upload.objects.filter(owner=form.owner, pk__in=ids.values()).in_bulk()
    return {role: found[pk] for role, pk in ids.items() if pk in found}


# Which of a dialog's clips are billed, by (mode, dialog order), for the quote's sentence.
CLIPS_BILLED = {
    (JobMode.DIALOG, ""): " (the longer clip)",
    (JobMode.DIALOG, DialogOrder.MEANWHILE): " (the longer clip)",
    (JobMode.DIALOG, DialogOrder.SEQUENTIAL): " (both clips, one after the other)",
}


def form_quote(form: NewJobForm) -> QuoteView:
    """The exact cost of the job as the form stands: the billed duration (see
    lifecycle.billed_seconds) in whole units, times the rate."""
    mode = form.current_mode
    staged = staged_for(form)
    audio_roles = [r for r, (kind, _l, _req) in ROLES[mode].items() if kind == UploadKind.AUDIO]
    missing = [ALL_ROLES[r][1] for r in audio_roles if r not in staged]
    if missing:
        what = "both audio clips" if len(audio_roles) > 1 else "the audio"
        return QuoteView(quote=None, missing=f"Add {what} to see the exact cost.")
    provider = form.current_provider
    resolution = form.data.get("resolution") if form.is_bound else form.initial.get("resolution")
    if resolution not in Resolution.values:
        resolution = Resolution.P480
    order = form.current_dialog_order
    seconds = billed_seconds(mode=mode, files=staged, dialog_order=order)
    try:
        q = quote(
            provider=provider,
            model=catalogue.model_for(provider, mode),
            resolution=resolution,
            seconds=seconds,
        )
    except NoRate:
        return QuoteView(quote=None, problem="No price is set for this choice yet; ask staff.")
    available = credits_balances(user=form.owner)[Pool.STUDIO].available
    return QuoteView(
        quote=q,
        clips=CLIPS_BILLED.get((mode, order), ""),
        available=available,
        expected=expected_render(
            provider=provider, resolution=resolution, seconds=seconds, mode=mode
        ),
        options=_dialog_options(form, staged=staged, resolution=resolution),
    )


def _dialog_options(form: NewJobForm, *, staged, resolution: str) -> list[ProviderOption]:
    """Every offered provider's price and time for a dialog, so the member
    can compare before paying; empty for other modes or a single provider.
    Each is quoted with its own speaking order (JoyPix's clips always play
    at once), so the same files may bill differently."""
    mode = form.current_mode
    offered = form.fields["provider"].choices
    if mode != JobMode.DIALOG or len(offered) < 2:
        return []
    options = []
    for slug, label in offered:
        chosen = form.current_dialog_order or form.kept_dialog_order
        order = dialog_order_for(provider=slug, mode=mode, order=chosen)
        seconds = billed_seconds(mode=mode, files=staged, dialog_order=order)
        try:
            q = quote(
                provider=slug,
                model=catalogue.model_for(slug, mode),
                resolution=resolution,
                seconds=seconds,
            )
        except NoRate:
            continue
        options.append(
            ProviderOption(
                slug=slug,
                label=label,
                quote=q,
                expected=expected_render(
                    provider=slug, resolution=resolution, seconds=seconds, mode=mode
                ),
                current=slug == form.current_provider,
            )
        )
    return options if len(options) > 1 else []


MODE_TITLES = {
    JobMode.DIALOG: "New dialog video",
    JobMode.TALKING_PHOTO: "New talking photo",
    JobMode.VIDEO_DUB: "New video dub",
}
MODE_HELP = {
    JobMode.DIALOG: "A photo of two people and one audio clip for each of them.",
    JobMode.TALKING_PHOTO: "A photo of one person and the audio they speak.",
    JobMode.VIDEO_DUB: "A video and the new audio its speaker's lips should follow.",
}


def form_switched(*, owner, mode: str, params) -> NewJobForm:
    """A fresh form for another kind of video, keeping the options and the
    files that the new kind also takes. The provider is kept only when the
    member chose it: one that was merely the default of the kind switched
    from (`from_mode`) gives way to the new kind's default."""
    mode = mode if mode in JobMode.values else JobMode.DIALOG
    initial = {"mode": mode}
    for name in ("resolution", "prompt", "seed", "provider", "dialog_order"):
        if params.get(name) not in (None, ""):
            initial[name] = params.get(name)
    from_mode = params.get("from_mode")
    if from_mode in JobMode.values and initial.get("provider") == _default_provider(from_mode):
        del initial["provider"]
    ids = {role: upload_id(params.get(f"{role}_upload")) for role in ROLES[mode]}
    staged = {role: pk for role, pk in ids.items() if pk is not None}
    return NewJobForm(owner=owner, initial=initial, staged_ids=staged)
