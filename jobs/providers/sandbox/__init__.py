"""The sandbox provider: a local stand-in for JoyPix and lipsync.studio that
speaks both contracts over HTTP, fetches its inputs by URL and renders real
MP4s (H.264 + AAC). No Django needed; `manage.py sandbox` runs it.

    from . import SandboxConfig, SandboxServer

    with SandboxServer(SandboxConfig(api_key="k", rtf=0.05)) as sandbox:
        ...  # point a provider adapter at sandbox.url
"""

from .config import FAULT_COUNTS, MALFORMED_KINDS, Faults, SandboxConfig
from .contracts import JOYPIX_INPUTS, LIPSYNC_MODELS, MULTI_AUDIO_FIELDS
from .render import RESOLUTIONS
from .server import Call, SandboxServer, Task, WebhookDelivery

__all__ = [
    "FAULT_COUNTS",
    "JOYPIX_INPUTS",
    "LIPSYNC_MODELS",
    "MALFORMED_KINDS",
    "MULTI_AUDIO_FIELDS",
    "RESOLUTIONS",
    "Call",
    "Faults",
    "SandboxConfig",
    "SandboxServer",
    "Task",
    "WebhookDelivery",
]
