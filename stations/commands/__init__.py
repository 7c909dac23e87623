"""CSMS->CS commands: the one pipeline every door uses, its answer hooks, bulk sends and the typed helpers.

- :mod:`.pipeline`: ``command_send`` (validate, record, dispatch) and ``command_finish`` (record the outcome once)
- :mod:`.hooks`: ``on_command_sending(action)`` (what a command starts), ``on_command_answered(action)`` (the
  domain follow-ups of an answer) and ``on_command_failed(action)`` (of a command that got none it can use)
- :mod:`.bulk`: one request to many stations
- :mod:`.helpers`: one typed helper per action, generated from the official schemas
"""

from .bulk import bulk_command_send, bulk_summary, bulk_targets
from .hooks import on_command_answered, on_command_failed, on_command_sending
from .pipeline import (
    CONNECTION_CLOSED,
    NOT_CONNECTED,
    CommandValidationError,
    command_finish,
    command_for_dispatch,
    command_group,
    command_mark_sent,
    command_send,
    command_validate,
    command_webhook_data,
    commands_expire_stale,
    commands_fail_undelivered,
    trigger_message_check,
    triggerable_messages,
)

__all__ = [
    "CONNECTION_CLOSED",
    "NOT_CONNECTED",
    "CommandValidationError",
    "bulk_command_send",
    "bulk_summary",
    "bulk_targets",
    "command_finish",
    "command_for_dispatch",
    "command_group",
    "command_mark_sent",
    "command_send",
    "command_validate",
    "command_webhook_data",
    "commands_expire_stale",
    "commands_fail_undelivered",
    "on_command_answered",
    "on_command_failed",
    "on_command_sending",
    "trigger_message_check",
    "triggerable_messages",
]
