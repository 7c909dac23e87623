from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from security.upgrade import security_profile_upgrade_start
from stations.commands import CommandValidationError
from stations.models import ChargingStation


class Command(BaseCommand):
    help = (
        "Move a connected station to another security profile: SetNetworkProfile, then NetworkConfigurationPriority, "
        "then Reset, each once the station accepted the step before; both profiles are accepted meanwhile."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("identity")
        parser.add_argument("--profile", type=int, choices=[1, 2, 3], required=True)
        parser.add_argument(
            "--url", required=True, help="the CSMS URL for the station, e.g. wss://csms.example.com/ocpp/ID"
        )
        parser.add_argument("--slot", type=int, default=1, help="the station's configuration slot for the new profile")
        parser.add_argument("--interface", default="Wired0", help="ocppInterface (Wired0, Wireless0, ...)")

    def handle(self, *args: Any, **options: Any) -> None:
        station = ChargingStation.objects.filter(identity=options["identity"]).first()
        if station is None:
            raise CommandError(f"no station {options['identity']!r}")
        try:
            command = security_profile_upgrade_start(
                station=station,
                profile=options["profile"],
                csms_url=options["url"],
                configuration_slot=options["slot"],
                ocpp_interface=options["interface"],
            )
        except (ValueError, CommandValidationError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"SetNetworkProfile sent (command {command.pk}, {command.state})")
