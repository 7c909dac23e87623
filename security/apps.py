from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "security"
    verbose_name = "Security"

    def ready(self) -> None:
        # The OCPP handlers; the answer hooks of password rotation and of security-profile upgrades.
        from . import handlers, rotation, upgrade  # noqa: F401
