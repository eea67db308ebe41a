from .api_key import ApiKey, BudgetPeriod
from .idempotency import IdempotencyKey
from .job import (
    PICTURE_ROLES,
    DialogOrder,
    FailureCode,
    InputRole,
    Job,
    JobInput,
    JobMode,
    JobSource,
    JobState,
    Resolution,
)
from .lease import Lease
from .ledger import CreditAccount, EntryKind, LedgerEntry, Pool
from .media import StoredMedia, UploadKind, media_facts
from .pricing import Rate
from .provider_account import ProviderAccount
from .render_times import RenderTimes
from .upload import Upload
from .webhook_delivery import DeliveryStatus, WebhookDelivery

__all__ = [
    "PICTURE_ROLES",
    "ApiKey",
    "BudgetPeriod",
    "CreditAccount",
    "DeliveryStatus",
    "DialogOrder",
    "EntryKind",
    "FailureCode",
    "IdempotencyKey",
    "InputRole",
    "Job",
    "JobInput",
    "JobMode",
    "JobSource",
    "JobState",
    "Lease",
    "LedgerEntry",
    "Pool",
    "ProviderAccount",
    "StoredMedia",
    "Rate",
    "RenderTimes",
    "Resolution",
    "Upload",
    "UploadKind",
    "WebhookDelivery",
    "media_facts",
]
