from django.apps import AppConfig


class FirmwareConfig(AppConfig):
    name = "firmware"
    verbose_name = "Firmware, logs and files"

    def ready(self) -> None:
        from stations.commands import on_command_answered, on_command_sending  # noqa: I001 - one import per line

        # Firmware images and rollouts
        from . import handlers  # noqa: F401 - registers the OCPP handlers
        from . import publications, rollout_admin, rollouts  # noqa: F401 - rollout_admin registers the admin

        on_command_sending("UpdateFirmware", allocates="requestId")(rollouts.update_firmware_on_sending)
        on_command_answered("UpdateFirmware")(rollouts.update_firmware_on_answered)
        on_command_sending("PublishFirmware", allocates="requestId")(publications.publish_firmware_on_sending)
        on_command_answered("PublishFirmware")(publications.publish_firmware_on_answered)
        on_command_answered("UnpublishFirmware")(publications.unpublish_firmware_on_answered)

        # Files and log requests
        from . import admin_files, logs  # noqa: F401 - log hooks, LogStatusNotification, the files' admin

        logs.register()
