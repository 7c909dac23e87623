"""Id-token management for the API: group resolution and the all-or-nothing CSV import."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.dateparse import parse_datetime

from .models import AuthorizationStatus, IdToken, IdTokenType

CSV_COLUMNS = ("id_token", "type", "status", "expires_at", "group_id_token")


class GroupNotFound(ValueError):
    pass


def group_resolve(value: str) -> IdToken:
    """The group token named ``value`` (case-insensitive; a Central token wins if several types share it)."""
    candidates = list(IdToken.objects.filter(id_token__iexact=value).order_by("id"))
    if not candidates:
        raise GroupNotFound(f"no id token {value!r}")
    central = [t for t in candidates if t.type == IdTokenType.CENTRAL]
    return (central or candidates)[0]


def id_token_conflict(*, id_token: str, token_type: str, exclude_pk: int | None = None) -> bool:
    qs = IdToken.objects.filter(id_token__iexact=id_token, type=token_type)
    if exclude_pk is not None:
        qs = qs.exclude(pk=exclude_pk)
    return qs.exists()


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _parse_row(row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    problems: dict[str, str] = {}
    for column in CSV_COLUMNS:
        if not isinstance(row.get(column) or "", str):  # a short row leaves None, a long one a list
            row[column] = ""
        if "\x00" in (row.get(column) or ""):
            problems[column] = "must not contain NUL characters"
            row[column] = ""
    value = (row.get("id_token") or "").strip()
    if not value or len(value) > 36:
        problems.setdefault("id_token", "1 to 36 characters")
    token_type = (row.get("type") or "").strip() or IdTokenType.ISO14443
    if token_type not in IdTokenType.values:
        problems.setdefault("type", f"one of {', '.join(IdTokenType.values)}")
    status = (row.get("status") or "").strip() or AuthorizationStatus.ACCEPTED
    if status not in AuthorizationStatus.values:
        problems.setdefault("status", f"one of {', '.join(AuthorizationStatus.values)}")
    expires_raw = (row.get("expires_at") or "").strip()
    expires: datetime | None = None
    if expires_raw:
        try:
            expires = parse_datetime(expires_raw)
        except ValueError:
            expires = None
        if expires is not None and expires.tzinfo is not None:
            try:
                expires = expires.astimezone(UTC)
            except (OverflowError, ValueError):
                expires = None
        if expires is None or expires.tzinfo is None:
            problems.setdefault("expires_at", "an ISO 8601 timestamp with a UTC offset (e.g. 2027-01-01T00:00:00Z)")
    group = (row.get("group_id_token") or "").strip()
    return {"id_token": value, "type": token_type, "status": status, "expires_at": expires, "group": group}, problems


def import_csv(text: str) -> ImportResult:
    """Create or update tokens from CSV (header ``id_token,type,status,expires_at,group_id_token``).

    All or nothing: every row is checked first; with any error nothing is stored and every error is reported as
    ``{"row": <line number>, "errors": {column: message}}``. A row whose (id_token, type) exists updates it.
    ``group_id_token`` names a token already stored or one from the same file.
    """
    result = ImportResult()
    reader = csv.DictReader(io.StringIO(text))
    try:
        fieldnames = reader.fieldnames or []
    except csv.Error as exc:
        return ImportResult(errors=[{"row": 1, "errors": {"file": f"not readable as CSV: {exc}"}}])
    if "id_token" not in fieldnames:
        result.errors.append({"row": 1, "errors": {"header": f"columns needed: {', '.join(CSV_COLUMNS)}"}})
        return result
    rows: list[tuple[int, dict[str, Any]]] = []
    seen: dict[tuple[str, str], int] = {}
    try:
        return _import_rows(reader, rows, seen, result)
    except csv.Error as exc:
        return ImportResult(errors=[{"row": reader.line_num, "errors": {"file": f"not readable as CSV: {exc}"}}])


def _import_rows(
    reader: csv.DictReader[str],
    rows: list[tuple[int, dict[str, Any]]],
    seen: dict[tuple[str, str], int],
    result: ImportResult,
) -> ImportResult:
    for row in reader:
        line = reader.line_num
        limit = settings.CSMS_ID_TOKEN_IMPORT_MAX_ROWS
        if len(rows) >= limit:
            result.errors.append({"row": line, "errors": {"file": f"at most {limit} rows"}})
            return result
        parsed, problems = _parse_row(row)
        key = (parsed["id_token"].lower(), parsed["type"])
        if not problems and key in seen:
            problems["id_token"] = f"duplicate of row {seen[key]}"
        seen.setdefault(key, line)
        if problems:
            result.errors.append({"row": line, "errors": problems})
        rows.append((line, parsed))
    in_file = {p["id_token"].lower() for _, p in rows}
    for line, parsed in rows:
        group = parsed["group"]
        if group and group.lower() not in in_file and not IdToken.objects.filter(id_token__iexact=group).exists():
            result.errors.append({"row": line, "errors": {"group_id_token": f"no id token {group!r}"}})
        elif group and group.lower() == parsed["id_token"].lower():
            result.errors.append({"row": line, "errors": {"group_id_token": "a token cannot be its own group"}})
    if result.errors:
        result.errors.sort(key=lambda e: e["row"])
        return result
    with transaction.atomic():
        tokens: dict[str, IdToken] = {}
        for _, parsed in rows:
            token = IdToken.objects.filter(id_token__iexact=parsed["id_token"], type=parsed["type"]).first()
            if token is None:
                token = IdToken(id_token=parsed["id_token"], type=parsed["type"])
                result.created += 1
            else:
                result.updated += 1
            token.status = parsed["status"]
            token.expires_at = parsed["expires_at"]
            token.save()
            tokens.setdefault(token.id_token.lower(), token)
        for _, parsed in rows:
            token = IdToken.objects.get(id_token__iexact=parsed["id_token"], type=parsed["type"])
            group_name = parsed["group"]
            group = (tokens.get(group_name.lower()) or group_resolve(group_name)) if group_name else None
            if token.group_id_token_id != (group.pk if group else None):
                token.group_id_token = group
                token.save(update_fields=["group_id_token", "updated_at"])
    return result
