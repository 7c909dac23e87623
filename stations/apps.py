from django.apps import AppConfig


class StationsConfig(AppConfig):
    name = "stations"
    verbose_name = "Charging stations"

    def ready(self) -> None:
        from csms.metrics import collector_register

        from . import (
            datatransfer,
            handlers,  # noqa: F401 - registers the OCPP handlers
            remote,
        )
        from .commands import on_command_answered
        from .metrics import StationsCollector

        collector_register(StationsCollector())
        on_command_answered("ChangeAvailability")(remote.availability_on_answered)
        on_command_answered("Reset")(remote.reset_on_answered)
        datatransfer.data_transfer_modules_load()
