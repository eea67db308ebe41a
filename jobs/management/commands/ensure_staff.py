import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the first staff account if there is none, printing its password once."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username: str, **options):
        User = get_user_model()
        existing = User.objects.filter(is_staff=True, is_active=True).order_by("pk").first()
        if existing is not None:
            # The password was shown when the account was made; say who to sign in as.
            self.stdout.write(
                f"Sign in as staff user “{existing.get_username()}” (its password was printed "
                "when it was created; reset it with "
                f"`.venv/bin/python manage.py changepassword {existing.get_username()}`)."
            )
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        bar = "=" * 64
        self.stdout.write(
            f"{bar}\n"
            f"  First staff account created. This password is shown only once.\n"
            f"    username: {username}\n"
            f"    password: {password}\n"
            f"  Change it after signing in (your name > Change password).\n"
            f"{bar}"
        )
