from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from stations.commands import CommandValidationError
from stations.models import ChargingStation
from stations.network_profiles import csms_migration_start


class Command(BaseCommand):
    help = (
        "Move a connected station to another CSMS: SetNetworkProfile with the new URL, then "
        "NetworkConfigurationPriority, then Reset OnIdle, each once the station accepted the step before."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("identity")
        parser.add_argument("--url", required=True, help="the new CSMS's URL, e.g. wss://new.example.com/ocpp/ID")
        parser.add_argument("--slot", type=int, default=1, help="the station's configuration slot for the new CSMS")
        parser.add_argument("--interface", default="Wired0", help="ocppInterface (Wired0, Wireless0, ...)")

    def handle(self, *args: Any, **options: Any) -> None:
        station = ChargingStation.objects.filter(identity=options["identity"]).first()
        if station is None:
            raise CommandError(f"no station {options['identity']!r}")
        try:
            command = csms_migration_start(
                station=station,
                csms_url=options["url"],
                configuration_slot=options["slot"],
                ocpp_interface=options["interface"],
            )
        except (ValueError, CommandValidationError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"SetNetworkProfile sent (command {command.pk}, {command.state})")
