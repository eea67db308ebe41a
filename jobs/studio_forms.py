"""The new-job form. Files arrive either staged one by one (the page uploads
each on selection, with a progress bar) or, without JavaScript, with the form
itself; either way each is decoded and measured before it is accepted, and a
good file is kept (as a staged upload) when something else in the form is wrong."""

from django import forms

from . import media
from .models import JobMode, Resolution, Upload, UploadKind
from .providers import registry
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
SEED_MAX = 2**31 - 1


class NewJobForm(forms.Form):
    mode = forms.ChoiceField(choices=JobMode.choices, initial=JobMode.DIALOG)
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
                "placeholder": (
                    "e.g. the left man speaks happily, the right woman has cheerful expressions"
                ),
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

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner
        self.uploads: dict[str, Upload] = {}
        self.fields["provider"].choices = registry.provider_choices()
        for role, (kind, label, _required) in ALL_ROLES.items():
            self.fields[role] = forms.FileField(
                label=label,
                required=False,
                widget=forms.ClearableFileInput(attrs={"accept": ACCEPT[kind]}),
            )
            self.fields[f"{role}_upload"] = forms.IntegerField(
                required=False, widget=forms.HiddenInput
            )

    @property
    def current_mode(self) -> str:
        value = self.data.get("mode") if self.is_bound else None
        return value if value in JobMode.values else JobMode.DIALOG

    def clean(self):
        cleaned = super().clean()
        mode = cleaned.get("mode")
        if mode is None:
            return cleaned
        provider = cleaned.get("provider")
        if provider and mode not in registry.modes_of(provider):
            self.add_error(
                "provider",
                f"{registry.label_of(provider)} does not make "
                f"{JobMode(mode).label.lower()} videos.",
            )
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
                self.add_error(role, "That upload has expired; choose the file again.")
            return upload
        return None


def staged_for(form: NewJobForm) -> dict[str, Upload]:
    """Uploads named in the form's hidden fields, for showing what is kept."""
    ids = {}
    for role in ALL_ROLES:
        raw = form.data.get(f"{role}_upload") if form.is_bound else None
        if raw and str(raw).isdigit():
            ids[role] = int(raw)
    found = Upload.objects.filter(owner=form.owner, pk__in=ids.values()).in_bulk()
    return {role: found[pk] for role, pk in ids.items() if pk in found}
