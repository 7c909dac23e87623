from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "security"
    verbose_name = "Security"

    def ready(self) -> None:
        from stations.commands import on_command_answered, on_command_failed

        from . import (
            certificates,
            handlers,  # noqa: F401 - registers the OCPP handlers
            rotation,  # noqa: F401 - password rotation's answer hooks
            upgrade,  # noqa: F401 - security-profile upgrades' answer hooks
        )

        on_command_answered("CertificateSigned")(certificates.certificate_signed_on_answered)
        on_command_failed("CertificateSigned")(certificates.certificate_signed_on_failed)
        on_command_answered("GetInstalledCertificateIds")(certificates.installed_ids_on_answered)
        on_command_answered("InstallCertificate")(certificates.install_on_answered)
        on_command_answered("DeleteCertificate")(certificates.delete_on_answered)
