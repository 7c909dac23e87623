from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Make sure the 'admin' superuser exists (password from CSMS_ADMIN_PASSWORD or random, printed once)."

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        if User.objects.filter(username="admin").exists():
            self.stdout.write("Admin user 'admin' exists.")
            return
        password = os.environ.get("CSMS_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", "", password)
        if os.environ.get("CSMS_ADMIN_PASSWORD"):
            self.stdout.write(self.style.SUCCESS("Created admin user 'admin' (password from CSMS_ADMIN_PASSWORD)."))
        else:
            self.stdout.write(self.style.SUCCESS(f"Created admin user 'admin' with password: {password}"))
            self.stdout.write("(shown once; change it in the admin)")
