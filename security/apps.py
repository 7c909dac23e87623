from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "security"
    verbose_name = "Security"

    def ready(self) -> None:
        from . import (
            handlers,  # noqa: F401 - registers the OCPP handlers
            rotation,  # noqa: F401 - registers the SetVariables answer hook (password rotation)
        )
