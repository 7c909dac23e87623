"""Answer hooks: the domain's reactions to a station's answer, per action.

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
_answer_hooks: dict[str, list[AnswerHook]] = {}


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
    for hook in _answer_hooks.get(command.action, []):
        try:
            with transaction.atomic():  # a savepoint: a failing reaction never loses the outcome
                hook(command)
        except Exception:
            logger.exception("answer hook %r of command %s failed", hook, command.pk)
