"""DataTransfer (block P): the registry of vendor handlers, and the CS->CSMS DataTransfer answered from it.

A vendor's handler is registered per (vendorId, messageId), or for every messageId of the vendor::

    @data_transfer_handler("com.acme", "Price")
    def price(request: DataTransferRequest) -> DataTransferReply:
        return DataTransferReply("Accepted", data={"price": "0.30"})

Answers (the spec allows no NotSupported for DataTransfer): a vendor with no handler is ``UnknownVendorId``
unless listed in ``CSMS_DATA_TRANSFER_ACCEPT_VENDORS`` (then ``Accepted``: stored, nothing else done); a vendor
with handlers but none for the messageId is ``UnknownMessageId``. Modules holding handlers are imported at
startup from ``CSMS_DATA_TRANSFER_MODULES``. Every incoming DataTransfer is stored (``DataTransferRecord``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from .models import DataTransferRecord

ACCEPTED = "Accepted"
REJECTED = "Rejected"
UNKNOWN_MESSAGE_ID = "UnknownMessageId"
UNKNOWN_VENDOR_ID = "UnknownVendorId"
STATUSES = (ACCEPTED, REJECTED, UNKNOWN_MESSAGE_ID, UNKNOWN_VENDOR_ID)


@dataclass(frozen=True, slots=True)
class DataTransferRequest:
    station_id: int
    vendor_id: str
    message_id: str | None
    data: Any


@dataclass(frozen=True, slots=True)
class DataTransferReply:
    status: str
    data: Any = None


VendorHandler = Callable[[DataTransferRequest], DataTransferReply]
ANY_MESSAGE = None
_handlers: dict[str, dict[str | None, VendorHandler]] = {}


def data_transfer_handler(
    vendor_id: str, message_id: str | None = ANY_MESSAGE
) -> Callable[[VendorHandler], VendorHandler]:
    """Register ``func(request) -> DataTransferReply`` for a vendor's messageId (None: every messageId)."""

    def register(func: VendorHandler) -> VendorHandler:
        found = _handlers.setdefault(vendor_id, {}).get(message_id)
        if found is not None and found is not func:
            raise ValueError(f"a DataTransfer handler for {vendor_id}/{message_id} is already registered")
        _handlers[vendor_id][message_id] = func
        return func

    return register


def data_transfer_unregister(vendor_id: str, message_id: str | None = ANY_MESSAGE) -> None:
    """Remove a handler (tests, plugins reloading)."""
    _handlers.get(vendor_id, {}).pop(message_id, None)
    if not _handlers.get(vendor_id, True):
        del _handlers[vendor_id]


def data_transfer_modules_load() -> None:
    """Import the modules of ``CSMS_DATA_TRANSFER_MODULES`` (their decorators register the handlers)."""
    for module in settings.CSMS_DATA_TRANSFER_MODULES:
        importlib.import_module(module)


def data_transfer_answer(request: DataTransferRequest) -> DataTransferReply:
    """The reply the registry gives: the vendor's handler, or the unknown-vendor / unknown-message status."""
    # OCPP SPEC-SILENT: vendorId and messageId are compared exactly (the spec names no case rule for them).
    vendor = _handlers.get(request.vendor_id)
    if not vendor:
        accepted = request.vendor_id in settings.CSMS_DATA_TRANSFER_ACCEPT_VENDORS
        return DataTransferReply(ACCEPTED if accepted else UNKNOWN_VENDOR_ID)
    handler = vendor.get(request.message_id) if request.message_id is not None else None
    handler = handler or vendor.get(ANY_MESSAGE)
    if handler is None:
        return DataTransferReply(UNKNOWN_MESSAGE_ID)
    reply = handler(request)
    if reply.status not in STATUSES:
        raise ValueError(f"DataTransfer handler for {request.vendor_id} answered {reply.status!r}")
    return reply


def data_transfer_receive(*, station_id: int, vendor_id: str, message_id: str | None, data: Any) -> dict[str, Any]:
    """A station's DataTransfer: answer it from the registry and store it with that status. Returns the
    DataTransferResponse payload."""
    request = DataTransferRequest(station_id, vendor_id, message_id, data)
    reply = data_transfer_answer(request)
    DataTransferRecord.objects.create(
        station_id=station_id, vendor_id=vendor_id, message_id=message_id or "", data=data, status=reply.status
    )
    response: dict[str, Any] = {"status": reply.status}
    if reply.data is not None:
        response["data"] = reply.data
    return response
