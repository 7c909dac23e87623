"""REST API permissions, per Django groups (see ``csms.roles``).

- ``billing``: read-only (the ``view_*`` permissions of stations, transactions, id tokens, commands).
- ``operator``: billing + sending commands + managing id tokens.
- admin (``is_staff`` / ``is_superuser``): everything, including station registration and webhooks.

No token: 401. A token without the permission: 403.
"""

from __future__ import annotations

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request


def is_admin(user: Any) -> bool:
    return bool(user and user.is_authenticated and (user.is_staff or user.is_superuser))


class ModelPermissions(permissions.DjangoModelPermissions):
    """Django model permissions, reading included (``view_<model>`` for GET); admins may do everything."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request: Request, view: Any) -> bool:
        if is_admin(request.user):
            return True
        return super().has_permission(request, view)


class ReadOrAdmin(ModelPermissions):
    """Reading with ``view_<model>``; every change is for admins only (e.g. station registration)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if request.method in permissions.SAFE_METHODS:
            return super().has_permission(request, view)
        return is_admin(request.user)


class AdminOnly(permissions.BasePermission):
    message = "Only administrators (staff users) may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return is_admin(request.user)
