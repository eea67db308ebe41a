"""Provider accounts: staff store a provider's key once, encrypted; it is shown
back only as its last four characters, never logged, and the studio uses a
provider's enabled account before the environment and the sandbox."""

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.fernet import Fernet
from django.contrib.admin.models import LogEntry
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from jobs.models import ProviderAccount, RenderTimes
from jobs.pipeline.schedule import PROBS
from jobs.providers.accounts import (
    ProviderKeyUnreadable,
    provider_account_save,
    provider_key_decrypt,
)
from jobs.providers.http import ProviderError
from jobs.providers.routing import (
    adapter_for,
    endpoint_for,
    provider_sources,
    sandbox_needed,
)
from lipsync_site import settings as site_settings
from tests.fetch_support import PUBLIC_IP

pytestmark = pytest.mark.django_db

KEY = "sk_live_Zq8v3NpR7tWx2Ky4Hm6Jd9Lb"
NEW_KEY = "sk_live_Qw3Er5Ty7Ui9Op1As2Df4Gh"
ENV_KEY = "jp-environment-key-0042"


def shown(key: str) -> str:
    return f"••••{key[-4:]}"


def secret_parts(key: str) -> list[str]:
    """The key and its part that is never shown (all but the last four)."""
    return [key, key[:-4]]


@pytest.fixture(autouse=True)
def _no_environment_accounts(settings):
    settings.JOYPIX_BASE_URL = settings.JOYPIX_API_KEY = ""
    settings.LIPSYNC_STUDIO_BASE_URL = settings.LIPSYNC_STUDIO_API_KEY = ""
    settings.SANDBOX_URL = "http://127.0.0.1:8010"
    settings.SANDBOX_API_KEY = "sandbox-key"
    settings.FETCH_ALLOW_LOOPBACK = False


@pytest.fixture(autouse=True)
def names(net):
    """The providers' hosts resolve to a public address without DNS, and no
    connection leaves loopback (tests/fetch_support.py)."""
    for name in ("api.joypix.example", "x.example", "b.example", "ls.example"):
        net.resolve(name, PUBLIC_IP)
    net.resolve("internal.example", "10.20.30.40")
    return net


def make_account(by=None, *, provider="joypix", name="Team", key=KEY, enabled=True, **fields):
    return provider_account_save(
        provider=provider,
        name=name,
        base_url=fields.pop("base_url", "https://api.joypix.example"),
        enabled=enabled,
        api_key=key,
        by=by,
    )


def admin_url(name: str, *args) -> str:
    return reverse(f"admin:jobs_provideraccount_{name}", args=args)


def form_data(**changes) -> dict:
    data = {
        "provider": "joypix",
        "name": "Team",
        "base_url": "https://api.joypix.example",
        "api_key": KEY,
        "enabled": "on",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


# --- Stored encrypted, shown as the last four ------------------------------------------


def test_the_key_is_stored_encrypted_with_only_its_last_four_in_clear(staff):
    account = make_account(staff)

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM jobs_provideraccount WHERE id = %s", [account.pk])
        row = [str(value) for value in cursor.fetchone()]
    assert not any(part in value for value in row for part in secret_parts(KEY))
    assert account.key_last4 == KEY[-4:]
    assert provider_key_decrypt(ProviderAccount.objects.get(pk=account.pk)) == KEY
    assert (account.created_by, account.updated_by) == (staff, staff)
    assert KEY not in str(account) and KEY not in repr(account)


def test_staff_add_an_account_and_see_only_the_last_four(client, staff):
    client.force_login(staff)

    add_page = client.get(admin_url("add")).content.decode()
    assert 'type="password"' in add_page and "Written once" in add_page

    response = client.post(admin_url("add"), form_data())
    assert response.status_code == 302, response.content.decode()[:3000]
    account = ProviderAccount.objects.get()
    assert provider_key_decrypt(account) == KEY

    listing = client.get(admin_url("changelist")).content.decode()
    change = client.get(admin_url("change", account.pk)).content.decode()
    for page in (listing, change):
        assert shown(KEY) in page
        assert account.api_key_encrypted not in page
        for part in secret_parts(KEY):
            assert part not in page
    assert "api_key_encrypted" not in change
    assert 'name="api_key"' in change and "Leave blank to keep the stored key" in change

    entry = LogEntry.objects.get(object_id=str(account.pk))
    assert entry.user == staff and entry.is_addition()
    assert KEY not in entry.change_message and KEY not in entry.object_repr


def test_adding_an_account_needs_a_key(client, staff):
    client.force_login(staff)
    response = client.post(admin_url("add"), form_data(api_key=""))
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not ProviderAccount.objects.exists()


def test_a_key_with_spaces_is_refused_without_being_repeated(client, staff):
    client.force_login(staff)
    bad = "sk_live_with space_9a8b"
    response = client.post(admin_url("add"), form_data(api_key=bad))
    page = response.content.decode()
    assert response.status_code == 200 and "must not contain spaces" in page
    assert bad not in page and "with space" not in page
    assert not ProviderAccount.objects.exists()


def test_a_blank_key_on_edit_keeps_the_stored_one(client, staff):
    account = make_account(staff)
    token = account.api_key_encrypted
    client.force_login(staff)

    response = client.post(
        admin_url("change", account.pk), form_data(name="Main account", api_key="")
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    account.refresh_from_db()
    assert account.name == "Main account"
    assert account.api_key_encrypted == token and provider_key_decrypt(account) == KEY
    assert "Changed Name." in LogEntry.objects.latest("action_time").get_change_message()

    response = client.post(admin_url("change", account.pk), form_data(api_key=NEW_KEY))
    assert response.status_code == 302
    account.refresh_from_db()
    assert provider_key_decrypt(account) == NEW_KEY and account.key_last4 == NEW_KEY[-4:]
    message = LogEntry.objects.latest("action_time").get_change_message()
    assert "API key" in message and NEW_KEY not in message and KEY not in message


def test_the_service_keeps_the_key_when_none_is_given(staff):
    account = make_account(staff)
    provider_account_save(account=account, api_key=None, by=staff, name="Renamed")
    provider_account_save(account=account, api_key="   ", by=staff)
    account.refresh_from_db()
    assert account.name == "Renamed" and provider_key_decrypt(account) == KEY

    with pytest.raises(ValidationError) as refused:
        provider_account_save(
            provider="joypix", name="No key", base_url="https://x.example", api_key="", by=staff
        )
    assert "api_key" in refused.value.message_dict


def test_a_base_url_with_credentials_is_refused(staff):
    with pytest.raises(ValidationError) as refused:
        make_account(staff, base_url="https://user:pw@api.joypix.example")
    assert "base_url" in refused.value.message_dict


# --- The base URL goes through the fetch guard -------------------------------------------

REFUSED_BASE_URLS = [
    ("http://10.0.0.8:8080", "private network address"),
    ("http://169.254.169.254", "link-local address"),
    ("https://internal.example/v1", "private network address"),
    ("http://[::ffff:192.168.0.1]", "private network address"),
    ("http://2130706433:8010", "Enter a valid URL"),  # Django's URL check refuses it first
    ("ftp://api.joypix.example", "Only http:// and https://"),  # a URLField takes ftp
]


def _base_url_errors(response) -> list[str]:
    return list(response.context["adminform"].form.errors.get("base_url", []))


@pytest.mark.parametrize(("base_url", "words"), REFUSED_BASE_URLS)
def test_staff_get_a_field_error_for_a_base_url_that_is_not_public(
    client, staff, names, base_url, words
):
    client.force_login(staff)

    response = client.post(admin_url("add"), form_data(base_url=base_url))

    assert response.status_code == 200
    errors = _base_url_errors(response)
    assert len(errors) == 1 and words in errors[0], errors
    assert ProviderAccount.objects.count() == 0
    assert names.connects == []


def test_a_loopback_base_url_is_refused_unless_the_setting_allows_it(client, staff, settings):
    client.force_login(staff)
    sandbox = form_data(base_url="http://127.0.0.1:8010")

    refused = client.post(admin_url("add"), sandbox)
    assert refused.status_code == 200
    assert "loopback address" in _base_url_errors(refused)[0]
    assert ProviderAccount.objects.count() == 0

    settings.FETCH_ALLOW_LOOPBACK = True
    assert client.post(admin_url("add"), sandbox).status_code == 302
    assert ProviderAccount.objects.get().base_url == "http://127.0.0.1:8010"
    # Loopback only: the setting lets no private network through.
    private = client.post(admin_url("add"), form_data(base_url="http://10.0.0.8", enabled=None))
    assert "private network address" in _base_url_errors(private)[0]


def test_staff_get_a_field_error_for_a_base_url_with_credentials(client, staff):
    client.force_login(staff)
    response = client.post(
        admin_url("add"), form_data(base_url="https://user:pw@api.joypix.example")
    )
    assert response.status_code == 200
    assert "not in the URL" in _base_url_errors(response)[0]
    assert ProviderAccount.objects.count() == 0


def test_an_edit_to_an_unsafe_base_url_keeps_the_stored_one(client, staff):
    account = make_account(staff)
    client.force_login(staff)

    response = client.post(
        admin_url("change", account.pk), form_data(base_url="http://169.254.169.254", api_key="")
    )

    assert "link-local address" in _base_url_errors(response)[0]
    account.refresh_from_db()
    assert account.base_url == "https://api.joypix.example"


@pytest.mark.parametrize(("base_url", "words"), REFUSED_BASE_URLS)
def test_the_service_refuses_a_base_url_that_is_not_public(staff, base_url, words):
    with pytest.raises(ValidationError) as refused:
        make_account(staff, base_url=base_url)
    assert words in refused.value.message_dict["base_url"][0]
    assert ProviderAccount.objects.count() == 0


def test_the_base_url_field_names_joypix_s_real_address(client, staff):
    client.force_login(staff)
    page = client.get(admin_url("add")).content.decode()
    assert "https://openapi.joypix.ai" in page
    assert "api.joypix.ai" not in page.replace("openapi.joypix.ai", "")


# --- One enabled account per provider ------------------------------------------------


def test_the_database_allows_one_enabled_account_per_provider(staff):
    make_account(staff)
    token = Fernet(Fernet.generate_key()).encrypt(b"x").decode()
    with pytest.raises(IntegrityError), transaction.atomic():
        ProviderAccount.objects.create(
            provider="joypix", name="Second", base_url="https://b.example",
            api_key_encrypted=token, key_last4="xxxx", enabled=True,
        )  # fmt: skip
    # Disabled ones, and another provider's enabled one, are fine.
    make_account(staff, name="Spare", enabled=False)
    make_account(staff, provider="lipsync_studio", name="LS", base_url="https://ls.example")
    assert ProviderAccount.objects.filter(enabled=True).count() == 2


def test_the_service_names_the_account_already_enabled(staff):
    make_account(staff, name="Main")
    with pytest.raises(ValidationError) as refused:
        make_account(staff, name="Second")
    assert "“Main”" in refused.value.message_dict["enabled"][0]
    assert ProviderAccount.objects.count() == 1


def test_the_admin_says_which_account_is_enabled_already(client, staff):
    make_account(staff, name="Main")
    client.force_login(staff)

    response = client.post(admin_url("add"), form_data(name="Second", api_key=NEW_KEY))
    page = response.content.decode()
    assert response.status_code == 200
    assert "JoyPix already has an enabled account, “Main”" in page
    assert page.count("Disable it first") == 1  # one message, on the field
    assert NEW_KEY not in page
    assert ProviderAccount.objects.count() == 1

    response = client.post(admin_url("add"), form_data(name="Second", enabled=None))
    assert response.status_code == 302
    assert ProviderAccount.objects.filter(enabled=False).get().name == "Second"


# --- Which endpoint the studio uses ------------------------------------------------------


def test_endpoint_for_prefers_the_account_then_the_environment_then_the_sandbox(
    settings, staff, django_assert_num_queries
):
    sandbox = endpoint_for("joypix")
    assert sandbox.is_sandbox and sandbox.source == "sandbox"
    assert sandbox.base_url == "http://127.0.0.1:8010" and sandbox_needed()

    settings.JOYPIX_BASE_URL = "https://env.joypix.example"
    settings.JOYPIX_API_KEY = ENV_KEY
    env = endpoint_for("joypix")
    assert (env.is_sandbox, env.source, env.base_url, env.api_key) == (
        False,
        "environment",
        "https://env.joypix.example",
        ENV_KEY,
    )

    account = make_account(staff, name="Team")
    with django_assert_num_queries(1):
        chosen = endpoint_for("joypix")
    assert (chosen.is_sandbox, chosen.source, chosen.base_url, chosen.api_key) == (
        False,
        "account: Team",
        "https://api.joypix.example",
        KEY,
    )
    assert KEY not in repr(chosen) and KEY not in str(chosen)

    # Another provider is untouched, so the sandbox is still needed for it.
    assert endpoint_for("lipsync_studio").is_sandbox and sandbox_needed()
    with django_assert_num_queries(1):
        sources = provider_sources()
    assert sources == {"joypix": "account: Team", "lipsync_studio": "sandbox"}

    provider_account_save(account=account, api_key=None, by=staff, enabled=False)
    assert endpoint_for("joypix").source == "environment"


def test_no_sandbox_is_needed_when_every_provider_has_an_account(staff):
    make_account(staff)
    make_account(staff, provider="lipsync_studio", name="LS", base_url="https://ls.example")
    assert not sandbox_needed()


# --- The secret ------------------------------------------------------------------------


def test_a_changed_secret_gives_a_clear_error_without_the_key(client, settings, staff):
    account = make_account(staff, name="Team")
    settings.PROVIDER_KEYS_SECRET = Fernet.generate_key().decode()

    # Pages that only say what is in use still work.
    assert provider_sources()["joypix"] == "account: Team"
    with pytest.raises(ProviderKeyUnreadable) as unreadable:
        endpoint_for("joypix")
    message = str(unreadable.value)
    assert "PROVIDER_KEYS_SECRET" in message and "Re-enter the key" in message
    assert "JoyPix: Team" in message
    assert not any(part in message for part in secret_parts(KEY))
    assert unreadable.value.__cause__ is None and unreadable.value.__suppress_context__

    client.force_login(staff)
    listing = client.get(admin_url("changelist")).content.decode()
    assert "can&#x27;t be decrypted" in listing or "can't be decrypted" in listing
    assert KEY not in listing

    # Re-entering the key under the new secret mends it.
    provider_account_save(account=account, api_key=KEY, by=staff)
    assert endpoint_for("joypix").api_key == KEY


def test_the_default_secret_comes_from_secret_key(monkeypatch):
    monkeypatch.delenv("PROVIDER_KEYS_SECRET", raising=False)
    derived = site_settings._provider_keys_secret()
    assert derived == site_settings._provider_keys_secret()  # stable across starts
    Fernet(derived)  # a valid key
    assert derived not in site_settings.SECRET_KEY


@pytest.mark.parametrize("bad", ["short", "not base64 at all!" * 3, "é" * 44])
def test_a_badly_formed_secret_stops_the_start_naming_the_variable(monkeypatch, bad):
    monkeypatch.setenv("PROVIDER_KEYS_SECRET", bad)
    with pytest.raises(ImproperlyConfigured) as refused:
        site_settings._provider_keys_secret()
    assert "PROVIDER_KEYS_SECRET" in str(refused.value)
    assert bad not in str(refused.value)


def test_a_well_formed_secret_is_used_as_it_is(monkeypatch):
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("PROVIDER_KEYS_SECRET", key)
    assert site_settings._provider_keys_secret() == key


# --- Who may see it ------------------------------------------------------------------------


def test_members_cannot_reach_provider_accounts(client, alice, staff):
    account = make_account(staff)
    client.force_login(alice)
    for url in (admin_url("changelist"), admin_url("add"), admin_url("change", account.pk)):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    response = client.post(admin_url("change", account.pk), form_data(api_key="sk_evil_0000"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert provider_key_decrypt(ProviderAccount.objects.get()) == KEY


# --- Never in logs, pages or error messages ------------------------------------------------


class _KeyEchoingProvider(BaseHTTPRequestHandler):
    """A careless provider that repeats the caller's Authorization header in
    its error answer."""

    def do_GET(self):
        body = json.dumps(
            {"code": 401, "message": f"bad credentials: {self.headers.get('Authorization')}"}
        ).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def echoing_provider():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeyEchoingProvider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def all_logs(caplog):
    """Every record of every logger at DEBUG, including the ones that do not
    propagate to the root (jobs, django_q), and the SQL with its parameters."""
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    saved = [(logger, logger.level, logger.disabled) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
        if logger is not logging.getLogger() and not logger.propagate:
            logger.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.DEBUG)
    connection.force_debug_cursor = True
    yield caplog
    connection.force_debug_cursor = False
    for logger, level, disabled in saved:
        logger.setLevel(level)
        logger.disabled = disabled
        if caplog.handler in logger.handlers and logger is not logging.getLogger():
            logger.removeHandler(caplog.handler)


def test_the_key_never_reaches_logs_pages_or_errors(
    client, staff, settings, all_logs, echoing_provider
):
    settings.FETCH_ALLOW_LOOPBACK = True  # the echoing provider is on 127.0.0.1
    client.force_login(staff)
    pages = []

    response = client.post(admin_url("add"), form_data(base_url=echoing_provider))
    assert response.status_code == 302
    account = ProviderAccount.objects.get()
    change_url = admin_url("change", account.pk)
    pages += [
        client.get(admin_url("changelist")),
        client.get(change_url),
        client.post(change_url, form_data(base_url=echoing_provider, api_key="")),
        client.post(change_url, form_data(base_url=echoing_provider, api_key=NEW_KEY)),
        client.get(admin_url("history", account.pk)),
    ]
    assert all(page.status_code in (200, 302) for page in pages)

    endpoint = endpoint_for("joypix")
    assert endpoint.api_key == NEW_KEY
    errors = []
    with adapter_for(endpoint) as adapter:
        try:
            adapter.status("task-1")
        except ProviderError as error:
            errors.append(error)
    assert errors, "the echoing provider answers 401"

    # The same with an unreadable key.
    settings.PROVIDER_KEYS_SECRET = Fernet.generate_key().decode()
    try:
        endpoint_for("joypix")
    except ProviderKeyUnreadable as error:
        errors.append(error)
    pages.append(client.get(admin_url("changelist")))

    logged = all_logs.text + "\n".join(
        f"{record.getMessage()} {record.exc_text or ''}" for record in all_logs.records
    )
    assert "INSERT INTO" in logged or "UPDATE" in logged  # the SQL was captured too
    texts = [logged] + [str(e) for e in errors] + [p.content.decode() for p in pages]
    texts += [entry.change_message + entry.object_repr for entry in LogEntry.objects.all()]
    for text in texts:
        for key in (KEY, NEW_KEY):
            for part in secret_parts(key):
                assert part not in text


def _learnt_joypix_row() -> RenderTimes:
    return RenderTimes.objects.create(
        provider="joypix",
        provider_model="motion-2-dialog",
        resolution="480p",
        samples=40,
        quantiles=[3.0] * len(PROBS),  # the sandbox's speed, nothing like JoyPix's
    )


def test_learnt_render_times_restart_when_jobs_go_elsewhere_not_for_a_new_key(staff):
    row = _learnt_joypix_row()

    account = make_account(staff)  # from the sandbox to the real JoyPix
    row.refresh_from_db()
    assert (row.samples, row.quantiles) == (0, []) and row.learn_from is not None
    first_restart = row.learn_from

    RenderTimes.objects.filter(pk=row.pk).update(samples=12, quantiles=[15.0] * len(PROBS))
    provider_account_save(account=account, api_key=NEW_KEY, by=staff, name="Renamed")
    row.refresh_from_db()
    assert row.samples == 12, "a new key or name is the same provider: what was learnt stays"

    provider_account_save(account=account, api_key=None, by=staff, base_url="https://b.example")
    row.refresh_from_db()
    assert row.samples == 0 and row.learn_from > first_restart


def test_deleting_the_account_in_the_admin_restarts_learning(client, staff):
    account = make_account(staff)
    row = _learnt_joypix_row()
    client.force_login(staff)
    response = client.post(admin_url("delete", account.pk), {"post": "yes"})
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.samples == 0, "its jobs go back to the sandbox"
