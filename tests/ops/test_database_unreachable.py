"""Which database errors close a station's connection (``CSMS_DB_UNREACHABLE_POLICY``): the database unreachable,
not a statement failing. Real errors from PostgreSQL and psycopg, wrapped by Django as the consumer sees them."""

from __future__ import annotations

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction
from django.db.utils import DatabaseError

from csms.dbpool import database_unreachable
from tests.ops.services import free_port


def _django_error(func: object) -> DatabaseError:
    assert callable(func)
    with pytest.raises(DatabaseError) as caught:
        func()
    return caught.value


@pytest.mark.django_db
def test_a_refused_connection_is_unreachable() -> None:
    from django.db.backends.postgresql.base import DatabaseWrapper

    params = connection.settings_dict | {"PORT": str(free_port()), "HOST": "127.0.0.1"}
    wrapper = DatabaseWrapper(params, alias="unreachable")
    error = _django_error(wrapper.ensure_connection)
    wrapper.close()
    assert isinstance(error.__cause__, psycopg.OperationalError)
    assert database_unreachable(error)


@pytest.mark.django_db(transaction=True)
def test_a_terminated_session_is_unreachable() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    with psycopg.connect(
        f"host={connection.settings_dict['HOST'] or '127.0.0.1'} port={connection.settings_dict['PORT'] or 5432} "
        f"user={connection.settings_dict['USER'] or 'postgres'} dbname={connection.settings_dict['NAME']}",
        password=connection.settings_dict.get("PASSWORD") or None,
        autocommit=True,
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))  # what a fast shutdown does to every session

    def query() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    error = _django_error(query)
    connection.close()
    assert database_unreachable(error)


@pytest.mark.django_db(transaction=True)
def test_statement_errors_are_not_unreachable() -> None:
    from stations.models import ChargingStation

    ChargingStation.objects.create(identity="CS-DUP")
    with pytest.raises(IntegrityError) as duplicate:
        with transaction.atomic():
            ChargingStation.objects.create(identity="CS-DUP")

    def too_slow() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = '10ms'")
            cursor.execute("SELECT pg_sleep(1)")

    canceled = _django_error(too_slow)  # an OperationalError too, with the statement's own SQLSTATE
    assert isinstance(canceled.__cause__, psycopg.errors.QueryCanceled)
    assert not database_unreachable(duplicate.value)
    assert not database_unreachable(canceled)
