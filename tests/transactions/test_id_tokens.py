"""IdToken invariants: EVSE restrictions, groups, case-insensitive uniqueness."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from transactions.models import IdToken

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("evse_ids", [["1"], [0], [True], {"a": 1}, [1.5]])
def test_id_token_evse_ids_must_be_positive_integers(evse_ids):
    token = IdToken(id_token="X", type="ISO14443", evse_ids=evse_ids)
    with pytest.raises(ValidationError) as exc:
        token.full_clean()
    assert "evse_ids" in exc.value.message_dict
    IdToken(id_token="X", type="ISO14443", evse_ids=[1, 2]).full_clean()


def test_id_token_unique_ignoring_case():
    IdToken.objects.create(id_token="abc", type="ISO14443")
    IdToken.objects.create(id_token="ABC", type="Central")  # another type: another token
    with pytest.raises(IntegrityError), transaction.atomic():
        IdToken.objects.create(id_token="ABC", type="ISO14443")


def test_id_token_cannot_be_its_own_group():
    token = IdToken.objects.create(id_token="G", type="Central")
    token.group_id_token = token
    with pytest.raises(ValidationError) as exc:
        token.full_clean()
    assert "group_id_token" in exc.value.message_dict
