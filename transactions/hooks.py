"""What other apps do when a transaction ends: a small registry (apps talk through services, not signals).

``on_transaction_ended(func)`` registers ``func(station_id=, transaction_id=, evse_id=, remote_start_command_id=)``
(the RequestStartTransaction command that started it, if any); it runs inside the
TransactionEvent's transaction when the session's Ended event is applied (once per session), e.g. the smart
charging app drops the session's TxProfiles from its record of what the station has installed, as the station does.
"""

from __future__ import annotations

from typing import Protocol


class TransactionEndedHook(Protocol):
    def __call__(
        self, *, station_id: int, transaction_id: str, evse_id: int | None, remote_start_command_id: int | None
    ) -> None: ...


_ended_hooks: list[TransactionEndedHook] = []


def on_transaction_ended(func: TransactionEndedHook) -> TransactionEndedHook:
    if func not in _ended_hooks:
        _ended_hooks.append(func)
    return func


def transaction_ended_hooks_run(
    *, station_id: int, transaction_id: str, evse_id: int | None, remote_start_command_id: int | None = None
) -> None:
    for hook in _ended_hooks:
        hook(
            station_id=station_id,
            transaction_id=transaction_id,
            evse_id=evse_id,
            remote_start_command_id=remote_start_command_id,
        )
