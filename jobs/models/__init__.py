from .api_key import ApiKey
from .idempotency import IdempotencyKey
from .job import (
    DialogOrder,
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
from .pricing import Rate
from .provider_account import ProviderAccount
from .upload import Upload, UploadKind

__all__ = [
    "ApiKey",
    "CreditAccount",
    "DialogOrder",
    "EntryKind",
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
    "Rate",
    "Resolution",
    "Upload",
    "UploadKind",
]
