from django.apps import AppConfig


class DeviceModelConfig(AppConfig):
    name = "devicemodel"
    verbose_name = "Device model"

    def ready(self) -> None:
        from stations.commands import on_command_answered  # noqa: I001 - one side-effect import per line

        from . import handlers  # noqa: F401 - registers the OCPP handlers
        from . import monitoring, services

        on_command_answered("GetBaseReport")(services.report_on_answered)
        on_command_answered("GetReport")(services.report_on_answered)
        on_command_answered("GetVariables")(services.variables_on_get_answered)
        on_command_answered("SetVariables")(services.variables_on_set_answered)
        on_command_answered("GetMonitoringReport")(monitoring.monitoring_report_on_answered)
        on_command_answered("SetVariableMonitoring")(monitoring.monitors_on_set_answered)
        on_command_answered("ClearVariableMonitoring")(monitoring.monitors_on_clear_answered)
        on_command_answered("SetMonitoringBase")(monitoring.monitoring_base_on_answered)
        on_command_answered("SetMonitoringLevel")(monitoring.monitoring_level_on_answered)
        # WriteOnly values: stored and logged [redacted] in SetVariables, scrubbed from NotifyReport's log rows.
        from stations.commands.secrets import log_redactor, secret_fields

        secret_fields("SetVariables")(services.set_variables_secrets)
        log_redactor("NotifyReport")(services.notify_report_for_log)
