"""The sandbox provider: a local stand-in for JoyPix and lipsync.studio that
speaks both contracts over HTTP, fetches its inputs by URL and renders real
MP4s (H.264 + AAC); `manage.py sandbox` runs it.

config.py (settings, faults), contracts.py (paths, request checks, answers),
server.py (the HTTP server and its route table), render.py, transport.py
(fetching inputs, posting webhooks), benchmark.py (a timing script).

It imports no Django and nothing else from jobs, so that it stays an
independent reading of the providers' pages (tests/test_imports.py checks);
only benchmark.py, a client of it, uses the JoyPix adapter.

    from . import SandboxConfig, SandboxServer

    with SandboxServer(SandboxConfig(api_key="k", rtf=0.05)) as sandbox:
        ...  # point a provider adapter at sandbox.url
"""

from .config import FAULT_COUNTS, MALFORMED_KINDS, Faults, SandboxConfig
from .contracts import JOYPIX_INPUTS, JOYPIX_MODELS, LIPSYNC_MODELS, MULTI_AUDIO_FIELDS
from .render import RESOLUTIONS
from .server import Call, SandboxServer, Task, WebhookDelivery

__all__ = [
    "FAULT_COUNTS",
    "JOYPIX_INPUTS",
    "JOYPIX_MODELS",
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
