from django.conf import settings

from jobs.credits.ledger import credits_balances


def studio(request):
    """What every page's layout shows: the team's name and the member's balances."""
    context = {"team_name": settings.TEAM_NAME}
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        context["balances"] = credits_balances(user=user)
    return context
