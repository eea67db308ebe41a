"""In a real browser: staff grant credits, the member signs in and finds them.

Screenshots go to tests/artifacts/ (light, dark, phone) for a person to look at.
"""

import re

import pytest
from playwright.sync_api import expect

from jobs.credits.ledger import credits_grant, credits_hold
from tests.browser_support import full_page_shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def test_a_member_finds_a_staff_grant_on_the_credits_page(
    page, live_server, sign_in, artifacts, alice, staff
):
    credits_grant(
        user=alice,
        pool="studio",
        amount=1250,
        key="welcome-alice",
        reason="Welcome to the studio",
        by=staff,
    )
    credits_grant(user=alice, pool="api", amount=300, key="api-alice", reason="API trial", by=staff)
    credits_hold(user=alice, pool="studio", amount=120, key="hold-alice", reason="Dialog, 720p")

    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, alice)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Admin")).to_have_count(0)
    nav.get_by_role("link", name="Credits").click()
    page.wait_for_url(f"{live_server.url}/credits/")

    expect(page.get_by_role("heading", level=1)).to_have_text("Credits")
    expect(nav.get_by_role("link", name="Credits")).to_have_attribute("aria-current", "page")
    grant = page.locator("#ledger").get_by_role("row").filter(has_text="Welcome to the studio")
    expect(grant).to_contain_text("Grant")
    expect(grant).to_contain_text("+1,250")
    expect(grant).to_contain_text("1,250")
    hold = page.locator("#ledger").get_by_role("row").filter(has_text="Dialog, 720p")
    expect(hold).to_contain_text("−120")

    balances = page.locator("#balances")
    expect(balances).to_contain_text("Studio")
    expect(balances).to_contain_text("1,130 credits")
    expect(balances).to_contain_text("120 held")
    expect(balances).to_contain_text("300 credits")
    full_page_shot(page, artifacts / "credits.png")

    page.emulate_media(color_scheme="dark")
    full_page_shot(page, artifacts / "credits-dark.png")
    page.emulate_media(color_scheme="light")

    page.set_viewport_size(PHONE)
    page.reload()
    expect(page.get_by_text("Welcome to the studio")).to_be_visible()
    expect(balances).to_contain_text("1,130 credits")
    full_page_shot(page, artifacts / "credits-phone.png")


def test_the_other_pages_look_finished(page, live_server, sign_in, artifacts, alice):
    page.set_viewport_size({"width": 1280, "height": 860})
    page.goto(f"{live_server.url}/login/")
    full_page_shot(page, artifacts / "login.png")

    # A wrong password: the error is announced and tied to the fields.
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Those details didn’t work.")
    expect(page.get_by_label("Password")).to_have_attribute(
        "aria-describedby", re.compile("login-error")
    )
    full_page_shot(page, artifacts / "login-error.png")

    sign_in(page, alice)
    expect(page.get_by_text("No jobs yet")).to_be_visible()
    full_page_shot(page, artifacts / "studio.png")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="API keys").click()
    page.get_by_label("Name (optional)").fill("Nightly render script")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key-value")
    expect(secret).to_have_text(re.compile(r"^sk_[a-z0-9]{8}_\S{32,}$"))
    raw = secret.inner_text()
    full_page_shot(page, artifacts / "api-keys.png")

    # The copy button copies; a reload does not bring the key back.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("[data-copy-status]")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == raw
    page.goto(f"{live_server.url}/api-keys/")
    expect(page.get_by_text("Copy your new key now")).to_have_count(0)
    assert raw.split("_", 2)[2] not in page.content()

    page.get_by_role("link", name=re.compile("^Revoke…")).click()
    page.get_by_role("button", name="Revoke key").click()
    expect(page.get_by_role("status").first).to_contain_text("Revoked “Nightly render script”")
    full_page_shot(page, artifacts / "api-keys-revoked.png")

    page.set_viewport_size(PHONE)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Studio").click()
    full_page_shot(page, artifacts / "studio-phone.png")

    # Sign out from the user menu, by keyboard.
    page.locator("details.user-menu summary").focus()
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status").first).to_contain_text("You’re signed out.")
    page.goto(f"{live_server.url}/credits/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/credits/$"))
