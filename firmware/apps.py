from django.apps import AppConfig


class FirmwareConfig(AppConfig):
    name = "firmware"
    verbose_name = "Firmware, logs and files"

    def ready(self) -> None:
        from . import admin_files, logs  # noqa: F401 - log hooks, LogStatusNotification, the files' admin

        logs.register()
