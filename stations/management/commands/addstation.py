from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from stations.models import RegistrationStatus
from stations.services import station_register


class Command(BaseCommand):
    help = "Register (or update) a charging station so that it may connect."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("identity")
        parser.add_argument("--password", help="HTTP Basic password (stored hashed); implies security profile 1")
        parser.add_argument("--security-profile", type=int, choices=[0, 1, 2, 3], default=None)
        parser.add_argument(
            "--registration-status",
            choices=RegistrationStatus.values,
            default=RegistrationStatus.ACCEPTED,
            help="answer to its next BootNotification",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            station, created = station_register(
                identity=options["identity"],
                password=options["password"],
                security_profile=options["security_profile"],
                registration_status=options["registration_status"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        verb = "Registered" if created else "Updated"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} station {station.identity} (security profile {station.security_profile}, "
                f"{station.registration_status})"
            )
        )
