"""Signing in: what a member sees while sign-ins are paused (see login_throttle)."""

from django.contrib.auth.forms import AuthenticationForm
from django.shortcuts import render
from django.template.response import TemplateResponse

from .login_throttle import lockout_minutes_left

TOO_MANY = 429


def login_locked_out(request, original_response=None, credentials=None):
    """Axes' answer to a sign-in refused while paused (AXES_LOCKOUT_CALLABLE).

    The sign-in page the member used, ours or the admin's, with its form
    emptied of errors and saying when to try again.
    """
    minutes = lockout_minutes_left(request, credentials)
    lockout = (
        f"Too many failed sign-ins. Try again in {minutes} minute{'' if minutes == 1 else 's'}, "
        "or ask staff to unlock your account."
    )
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    context = getattr(original_response, "context_data", None)
    if isinstance(original_response, TemplateResponse) and context and "form" in context:
        form = type(context["form"])(request, initial={"username": username})
        response = TemplateResponse(
            request,
            original_response.template_name,
            context | {"form": form, "lockout": lockout},
            status=TOO_MANY,
        )
        return response.render()
    form = AuthenticationForm(request, initial={"username": username})
    return render(
        request,
        "registration/login.html",
        {"form": form, "lockout": lockout},
        status=TOO_MANY,
    )
