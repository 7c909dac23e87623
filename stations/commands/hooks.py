"""Send and answer hooks: the domain's part in a command, per action.

Send hooks (``on_command_sending``) run in ``command_send``'s transaction once the ``Command`` row exists and
before it is dispatched: a domain records what the command starts (a remote start, a reservation) and may write
the id it allocates into the request (``remoteStartId``, the reservation ``id``). A failing send hook fails the
send: nothing is stored or sent.

Answer hooks: the domain's reactions to a station's answer, per action. Failure hooks
(``on_command_failed``): its reactions to a command that ended without an answer it can use (a CALLERROR, a
schema-invalid answer, the connection closed, no answer in time), so nothing the command started stays
"requested" for ever.

A follow-up hangs here (e.g. the transactions app records SendLocalList results), so it happens whichever door
sent the command: dashboard, admin, API, bulk or a Celery job. Hooks run inside ``command_finish``'s transaction,
so the command's outcome and its effect commit together; each in a savepoint, so a failing reaction never loses
the outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction

from csms.ocpp import actions

from ..models import Command

logger = logging.getLogger(__name__)

AnswerHook = Callable[[Command], None]
SendHook = Callable[[Command], None]
_answer_hooks: dict[str, list[AnswerHook]] = {}
_send_hooks: dict[str, list[SendHook]] = {}
_failure_hooks: dict[str, list[AnswerHook]] = {}
# action -> the request field its send hook allocates (a caller may leave it out; whatever it gives is replaced).
_allocated_fields: dict[str, str] = {}


def on_command_sending(action: str, *, allocates: str | None = None) -> Callable[[SendHook], SendHook]:
    """Register ``func(command)`` to run when a command of ``action`` is recorded, before it is dispatched.

    ``allocates``: a top-level integer field of the request that the hook sets (the CSMS allocates it).
    """
    if action not in actions.CSMS_TO_CS:
        raise ValueError(f"{action!r} is not a CSMS->CS action")
    if allocates:
        _allocated_fields[action] = allocates

    def register(func: SendHook) -> SendHook:
        if func not in _send_hooks.setdefault(action, []):
            _send_hooks[action].append(func)
        return func

    return register


def allocated_field(action: str) -> str | None:
    """The request field the CSMS allocates for ``action`` (filled in by its send hook), if any."""
    return _allocated_fields.get(action)


def send_hooks_run(command: Command) -> None:
    """Run the send hooks of a just-recorded command (inside command_send's transaction; exceptions propagate)."""
    for hook in _send_hooks.get(command.action, []):
        hook(command)


def on_command_answered(action: str) -> Callable[[AnswerHook], AnswerHook]:
    """Register ``func(command)`` to run when a command of ``action`` is answered (state ``answered``)."""
    if action not in actions.CSMS_TO_CS:
        raise ValueError(f"{action!r} is not a CSMS->CS action")

    def register(func: AnswerHook) -> AnswerHook:
        if func not in _answer_hooks.setdefault(action, []):
            _answer_hooks[action].append(func)
        return func

    return register


def answer_hooks_run(command: Command) -> None:
    """Run the hooks of an answered command (inside the caller's transaction)."""
    _run_each(_answer_hooks.get(command.action, []), command, "answer")


def on_command_failed(action: str) -> Callable[[AnswerHook], AnswerHook]:
    """Register ``func(command)`` to run when a command of ``action`` ends ``failed`` or ``timed_out``.

    A timed-out CALL may still have been carried out by the station: a hook says so where it matters (e.g. a
    later report from the station still completes what the command asked for).
    """
    if action not in actions.CSMS_TO_CS:
        raise ValueError(f"{action!r} is not a CSMS->CS action")

    def register(func: AnswerHook) -> AnswerHook:
        if func not in _failure_hooks.setdefault(action, []):
            _failure_hooks[action].append(func)
        return func

    return register


def _run_each(hooks: list[AnswerHook], command: Command, kind: str) -> None:
    for hook in hooks:
        try:
            with transaction.atomic():  # a savepoint: a failing reaction never loses the outcome
                hook(command)
        except Exception:
            logger.exception("%s hook %r of command %s failed", kind, hook, command.pk)


def failure_hooks_run(command: Command) -> None:
    """Run the failure hooks of a command that ended failed or timed out (inside the caller's transaction)."""
    _run_each(_failure_hooks.get(command.action, []), command, "failure")


def hooks_for(action: str) -> list[SendHook | AnswerHook]:
    """The send, answer and failure hooks registered for ``action`` (the README's message table is checked
    against them)."""
    return [*_send_hooks.get(action, []), *_answer_hooks.get(action, []), *_failure_hooks.get(action, [])]
