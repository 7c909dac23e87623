from django.apps import AppConfig


class StationsConfig(AppConfig):
    name = "stations"
    verbose_name = "Charging stations"

    def ready(self) -> None:
        from csms.metrics import collector_register

        from . import (
            datatransfer,
            display_messages,
            handlers,  # noqa: F401 - registers the OCPP handlers
            network_profiles,
            remote,
            services,
        )
        from .commands import on_command_answered, on_command_failed, on_command_sending, secrets
        from .metrics import StationsCollector

        on_command_sending("SetDisplayMessage")(display_messages.display_message_on_sending)
        on_command_answered("SetDisplayMessage")(display_messages.display_message_on_set_answered)
        on_command_failed("SetDisplayMessage")(display_messages.display_message_on_set_failed)
        on_command_answered("ClearDisplayMessage")(display_messages.display_message_on_clear_answered)
        on_command_sending("GetDisplayMessages", allocates="requestId")(
            display_messages.display_messages_on_get_sending
        )
        on_command_answered("GetDisplayMessages")(display_messages.display_messages_on_get_answered)
        on_command_failed("GetDisplayMessages")(display_messages.display_messages_on_get_failed)

        collector_register(StationsCollector())
        on_command_answered("ChangeAvailability")(remote.availability_on_answered)
        on_command_answered("Reset")(remote.reset_on_answered)
        on_command_sending("SetNetworkProfile")(network_profiles.network_profile_on_sending)
        on_command_answered("SetNetworkProfile")(network_profiles.network_profile_on_answered)
        on_command_failed("SetNetworkProfile")(network_profiles.network_profile_on_failed)
        on_command_answered("SetVariables")(network_profiles.migration_on_priority)
        secrets.log_redactor("NotifyEvent")(services.notify_event_for_log)
        datatransfer.data_transfer_modules_load()
