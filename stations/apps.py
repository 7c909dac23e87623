from django.apps import AppConfig


class StationsConfig(AppConfig):
    name = "stations"
    verbose_name = "Charging stations"

    def ready(self) -> None:
        from csms.metrics import collector_register

        from . import (
            datatransfer,
            handlers,  # noqa: F401 - registers the OCPP handlers
        )
        from .metrics import StationsCollector

        collector_register(StationsCollector())
        datatransfer.data_transfer_modules_load()
