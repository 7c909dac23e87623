"""One exception per OCPP-J 2.0.1 CALLERROR code."""

from __future__ import annotations

from typing import Any, ClassVar

MAX_DESCRIPTION = 255


class OcppError(Exception):
    """Raised anywhere while handling a CALL; becomes a CALLERROR frame."""

    code: ClassVar[str] = "GenericError"
    default_description: ClassVar[str] = "Generic error"

    def __init__(self, description: str | None = None, details: dict[str, Any] | None = None) -> None:
        self.description = (description or self.default_description)[:MAX_DESCRIPTION]
        self.details: dict[str, Any] = details if details is not None else {}
        super().__init__(self.description)

    def __repr__(self) -> str:
        return f"{self.code}({self.description!r})"


class FormatViolation(OcppError):
    code = "FormatViolation"
    default_description = "Payload for action is syntactically incorrect"


class GenericError(OcppError):
    code = "GenericError"


class InternalError(OcppError):
    code = "InternalError"
    default_description = "An internal error occurred and the receiver was not able to process the request"


class MessageTypeNotSupported(OcppError):
    code = "MessageTypeNotSupported"
    default_description = "A message with a message type number received that is not supported"


class ActionNotImplemented(OcppError):
    # Not named after its code: ``NotImplemented`` is a Python builtin.
    code = "NotImplemented"
    default_description = "Requested action is not known by the receiver"


class NotSupported(OcppError):
    code = "NotSupported"
    default_description = "Requested action is recognised but not supported by the receiver"


class OccurrenceConstraintViolation(OcppError):
    code = "OccurrenceConstraintViolation"
    default_description = "Payload is syntactically correct but at least one field violates occurrence constraints"


class PropertyConstraintViolation(OcppError):
    code = "PropertyConstraintViolation"
    default_description = "Payload is syntactically correct but at least one field violates property constraints"


class ProtocolError(OcppError):
    code = "ProtocolError"
    default_description = "Payload for action is incomplete"


class RpcFrameworkError(OcppError):
    code = "RpcFrameworkError"
    default_description = "Content of the call is not a valid RPC request"


class SecurityError(OcppError):
    code = "SecurityError"
    default_description = "The message was not processed because of a security issue"


class TypeConstraintViolation(OcppError):
    code = "TypeConstraintViolation"
    default_description = "Payload is syntactically correct but at least one field violates data type constraints"


ERRORS_BY_CODE: dict[str, type[OcppError]] = {
    cls.code: cls
    for cls in (
        FormatViolation,
        GenericError,
        InternalError,
        MessageTypeNotSupported,
        ActionNotImplemented,
        NotSupported,
        OccurrenceConstraintViolation,
        PropertyConstraintViolation,
        ProtocolError,
        RpcFrameworkError,
        SecurityError,
        TypeConstraintViolation,
    )
}
