"""Helpers for REST API tests against a live server: tokens and plain ``urllib`` requests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def make_user(username: str = "operator", *, perms: tuple[str, ...] = ("add_command",), password: str = "pw") -> Any:
    """A user with the given ``stations`` permissions; returns (user, token key)."""
    from django.contrib.auth.models import Permission, User
    from rest_framework.authtoken.models import Token

    user = User.objects.create_user(username, password=password)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(content_type__app_label="stations", codename=codename))
    return user, Token.objects.create(user=user).key


def api(
    base_url: str, method: str, path: str, body: Any = None, token: str | None = None, timeout: float = 60
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw or b"null")
        except ValueError:
            return exc.code, raw.decode(errors="replace")
