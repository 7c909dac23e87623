from django.apps import AppConfig


class DeviceModelConfig(AppConfig):
    name = "devicemodel"
    verbose_name = "Device model"

    def ready(self) -> None:
        from stations.commands import on_command_answered  # noqa: I001 - one side-effect import per line

        from . import handlers  # noqa: F401 - registers the OCPP handlers
        from . import services

        on_command_answered("GetBaseReport")(services.report_on_answered)
        on_command_answered("GetReport")(services.report_on_answered)
        on_command_answered("GetVariables")(services.variables_on_get_answered)
        on_command_answered("SetVariables")(services.variables_on_set_answered)
