from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from security.rotation import RotationError, password_rotate
from stations.models import ChargingStation


class Command(BaseCommand):
    help = (
        "Rotate a connected station's BasicAuthPassword: a new random one is sent with SetVariables and becomes its "
        "password when the station accepts (the old one stays valid until the station connects with the new one)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("identity")
        parser.add_argument("--length", type=int, default=None, help="16 to 40 (default CSMS_PASSWORD_ROTATION_LENGTH)")

    def handle(self, *args: Any, **options: Any) -> None:
        station = ChargingStation.objects.filter(identity=options["identity"]).first()
        if station is None:
            raise CommandError(f"no station {options['identity']!r}")
        try:
            rotation = password_rotate(station=station, length=options["length"])
        except (RotationError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"rotation {rotation.pk} sent (command {rotation.command_id}); state: {rotation.state}")
