"""A vendor's DataTransfer handlers, loaded by the test server through CSMS_DATA_TRANSFER_MODULES."""

from __future__ import annotations

from stations.datatransfer import DataTransferReply, DataTransferRequest, data_transfer_handler

VENDOR = "com.example.test"


@data_transfer_handler(VENDOR, "Echo")
def echo(request: DataTransferRequest) -> DataTransferReply:
    return DataTransferReply("Accepted", data={"echo": request.data, "station_id": request.station_id})


@data_transfer_handler(VENDOR, "Refuse")
def refuse(request: DataTransferRequest) -> DataTransferReply:
    return DataTransferReply("Rejected")
