"""Which OCPP 2.0.1 actions each side may initiate (OCPP 2.0.1 part 2, per use case)."""

from __future__ import annotations

from .schemas import all_actions

# The 40 requests a CSMS sends to a station (DataTransfer goes both ways).
CSMS_TO_CS: frozenset[str] = frozenset(
    {
        "CancelReservation",
        "CertificateSigned",
        "ChangeAvailability",
        "ClearCache",
        "ClearChargingProfile",
        "ClearDisplayMessage",
        "ClearVariableMonitoring",
        "CostUpdated",
        "CustomerInformation",
        "DataTransfer",
        "DeleteCertificate",
        "GetBaseReport",
        "GetChargingProfiles",
        "GetCompositeSchedule",
        "GetDisplayMessages",
        "GetInstalledCertificateIds",
        "GetLocalListVersion",
        "GetLog",
        "GetMonitoringReport",
        "GetReport",
        "GetTransactionStatus",
        "GetVariables",
        "InstallCertificate",
        "PublishFirmware",
        "RequestStartTransaction",
        "RequestStopTransaction",
        "ReserveNow",
        "Reset",
        "SendLocalList",
        "SetChargingProfile",
        "SetDisplayMessage",
        "SetMonitoringBase",
        "SetMonitoringLevel",
        "SetNetworkProfile",
        "SetVariableMonitoring",
        "SetVariables",
        "TriggerMessage",
        "UnlockConnector",
        "UnpublishFirmware",
        "UpdateFirmware",
    }
)

# The 24 station-initiated requests, plus DataTransfer.
CS_TO_CSMS: frozenset[str] = (all_actions() - CSMS_TO_CS) | {"DataTransfer"}

# TriggerMessage's requestedMessage (MessageTriggerEnumType) -> the CS->CSMS request the station then sends.
TRIGGER_TARGETS: dict[str, str] = {
    "BootNotification": "BootNotification",
    "LogStatusNotification": "LogStatusNotification",
    "FirmwareStatusNotification": "FirmwareStatusNotification",
    "Heartbeat": "Heartbeat",
    "MeterValues": "MeterValues",
    "SignChargingStationCertificate": "SignCertificate",
    "SignV2GCertificate": "SignCertificate",
    "StatusNotification": "StatusNotification",
    "TransactionEvent": "TransactionEvent",
    "SignCombinedCertificate": "SignCertificate",
    "PublishFirmwareStatusNotification": "PublishFirmwareStatusNotification",
}
