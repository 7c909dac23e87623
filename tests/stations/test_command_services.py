"""Command services on the real database: bookkeeping that the wire tests cannot time deterministically."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from stations import commands, connections, services, tasks
from stations.models import ChargingStation, Command, CommandState, ProtocolViolation

pytestmark = pytest.mark.django_db


def online_station(identity: str = "CS-1", channel: str = "specific.test!dead") -> tuple[ChargingStation, int]:
    station, _ = services.station_register(identity=identity)
    opened = connections.connection_open(
        station_id=station.pk, remote_addr="127.0.0.1:1", subprotocol="ocpp2.0.1", channel_name=channel
    )
    return station, opened.connection_id


def test_command_to_a_connected_station_is_queued_for_its_channel():
    station, _ = online_station()
    command = commands.command_send(station=station, action="ClearCache", payload={})
    command.refresh_from_db()
    assert (command.state, command.channel_name, command.message_id) == (
        "queued",
        "specific.test!dead",
        str(command.pk),
    )
    assert command.sent_at is None and command.finished_at is None


def test_closing_connection_fails_commands_it_never_took_up():
    station, connection_id = online_station()
    command = commands.command_send(station=station, action="ClearCache", payload={})
    connections.connection_close(connection_id=connection_id, close_code=1006)
    command.refresh_from_db()
    assert command.state == CommandState.FAILED
    assert command.error_description == "connection closed before the station answered"
    assert command.finished_at is not None
    assert commands.command_send(station=station, action="ClearCache", payload={}).state == CommandState.OFFLINE


def test_a_replaced_connection_closing_leaves_the_new_connections_commands_alone():
    station, old = online_station(channel="specific.test!old")
    online_station(channel="specific.test!new")
    command = commands.command_send(station=station, action="ClearCache", payload={})
    connections.connection_close(connection_id=old, close_code=4001)
    command.refresh_from_db()
    assert (command.state, command.channel_name) == ("queued", "specific.test!new")


def test_outcome_is_recorded_once_and_must_be_final():
    station, _ = online_station()
    command = commands.command_send(station=station, action="Reset", payload={"type": "Immediate"})
    commands.command_mark_sent(command_id=command.pk)
    first = commands.command_finish(command_id=command.pk, state="answered", response={"status": "Accepted"})
    assert first is not None and first.state == "answered" and first.sent_at is not None
    assert commands.command_finish(command_id=command.pk, state="failed", error_description="late") is None
    command.refresh_from_db()
    assert (command.state, command.response, command.error_description) == ("answered", {"status": "Accepted"}, "")
    with pytest.raises(ValueError, match="'sent' is not a final command state"):
        commands.command_finish(command_id=command.pk, state="sent")


def test_stale_commands_expire_and_recent_ones_do_not():
    station, _ = online_station()
    old = commands.command_send(station=station, action="ClearCache", payload={})
    recent = commands.command_send(station=station, action="ClearCache", payload={})
    Command.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert commands.commands_expire_stale(older_than_s=600) == 1
    old.refresh_from_db()
    recent.refresh_from_db()
    assert old.state == CommandState.TIMED_OUT
    assert old.error_description == "no outcome recorded within 600 s (the connection's process stopped?)"
    assert recent.state == CommandState.QUEUED


def test_celery_task_sends_through_the_same_service():
    station, _ = services.station_register(identity="CS-9")
    user = User.objects.create_user("ops")
    command_id = tasks.command_send_task.apply(args=[station.pk, "Reset", {"type": "OnIdle"}, user.pk]).get()
    command = Command.objects.get(pk=command_id)
    assert (command.action, command.request, command.state, command.created_by) == (
        "Reset",
        {"type": "OnIdle"},
        "offline",
        user,
    )


def test_operator_group_may_send_commands():
    group = Group.objects.get(name="operator")
    from csms.roles import BILLING_PERMISSIONS, OPERATOR_EXTRA_PERMISSIONS

    # the commands' permissions, plus the API's read permissions and id-token management (csms.roles)
    expected = {"add_command", "view_command", "add_bulkcommand", "view_bulkcommand"}
    for codenames in (*BILLING_PERMISSIONS.values(), *OPERATOR_EXTRA_PERMISSIONS.values()):
        expected.update(codenames)
    assert set(group.permissions.values_list("codename", flat=True)) == expected
    user = User.objects.create_user("op")
    user.groups.add(group)
    assert User.objects.get(pk=user.pk).has_perm("stations.add_command")


def test_schema_invalid_answer_fails_a_strict_station_and_is_tolerated_from_a_lenient_one():
    strict, _ = online_station("CS-S", channel="specific.test!s")
    lenient, _ = online_station("CS-L", channel="specific.test!l")
    ChargingStation.objects.filter(pk=lenient.pk).update(validation_mode="lenient")
    reply = {"status": "Accepted", "vendorExtra": 1}
    results = []
    for station in (strict, lenient):
        command = commands.command_send(station=station, action="ClearCache", payload={})
        results.append(commands.command_finish(command_id=command.pk, state="answered", response=reply))
    failed, answered = results
    assert failed is not None and answered is not None
    assert (failed.state, failed.error_code) == ("failed", "PropertyConstraintViolation")
    assert failed.error_description.startswith("the station's ClearCacheResponse is not schema-valid: (root): ")
    assert (answered.state, answered.response, answered.error_code) == ("answered", reply, "")
    recorded = ProtocolViolation.objects.order_by("station__identity").values_list(
        "station__identity", "action", "tolerated"
    )
    assert list(recorded) == [("CS-L", "ClearCacheResponse", True), ("CS-S", "ClearCacheResponse", False)]


def test_command_that_cannot_be_handed_to_the_channel_layer_fails_at_once(django_capture_on_commit_callbacks):
    # A channel name the (real) Redis layer refuses: the dispatch raises, as it would with Redis down.
    station, _ = online_station(channel="not a valid channel name")
    with django_capture_on_commit_callbacks(execute=True):
        command = commands.command_send(station=station, action="ClearCache", payload={})
    command.refresh_from_db()
    assert command.state == CommandState.FAILED
    assert command.error_description.startswith("could not reach the station's connection: ")
