from django.apps import AppConfig


class SmartchargingConfig(AppConfig):
    name = "smartcharging"
    verbose_name = "Smart charging"

    def ready(self) -> None:
        from stations.commands import on_command_answered
        from transactions.observers import on_session_change

        from . import sites

        # Sites and load management
        on_command_answered("SetChargingProfile")(sites.profile_on_answered)
        on_session_change(sites.session_changed)
