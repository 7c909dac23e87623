"""The user groups (roles), created and brought up to date after every ``migrate``.

``billing`` reads everything; ``operator`` also sends commands (``stations.add_command``) and manages id tokens and
reservations;
admins (``is_staff``) may do everything.
"""

from __future__ import annotations

from typing import Any

BILLING_GROUP = "billing"
OPERATOR_GROUP = "operator"

# app_label -> codenames
BILLING_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "stations": (
        "view_chargingstation",
        "view_evse",
        "view_connector",
        "view_command",
        "view_bulkcommand",
        "view_stationevent",
        "view_displaymessage",
        "view_displaymessagereport",
    ),
    "security": ("view_securityevent",),
    # Log requests' states, not their files (stations' logs may hold personal data): download_logrequest is not here.
    "firmware": (
        "view_logrequest",
        "view_stationfiletransfer",
        "view_firmwareimage",
        "view_firmwarerollout",
        "view_firmwarepublication",
    ),
    # Sites and load management
    "smartcharging": (
        "view_site",
        "view_sitemember",
        "view_evseallocation",
        "view_allocationround",
        "view_chargingprofile",  # charging profiles (K-block)
        "view_chargingprofilereport",
    ),
    "transactions": (
        "view_idtoken",
        "view_chargingtransaction",
        "view_transactioneventrecord",
        "view_metersample",
        "view_reservation",
        "view_customerinformationrequest",
        "view_customerdataclearance",
        "view_tariff",
        "view_tariffversion",
    ),
}
OPERATOR_EXTRA_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "stations": ("add_command", "add_bulkcommand"),
    "transactions": (
        "add_idtoken",
        "change_idtoken",
        "delete_idtoken",
        "add_reservation",
        "change_reservation",
        "delete_reservation",
        "add_customerinformationrequest",  # sending CustomerInformation (report and/or clear)
    ),
    "security": ("change_securityevent",),  # acknowledging critical events
    "firmware": (
        "add_logrequest",  # GetLog
        "download_logrequest",  # its files
        "change_stationfiletransfer",
        "add_firmwareimage",  # upload
        "add_firmwarerollout",  # start
        "change_firmwarerollout",  # cancel
    ),
    "smartcharging": ("add_chargingprofile", "delete_chargingprofile"),  # installing and clearing profiles
}


def _permissions(spec: dict[str, tuple[str, ...]]) -> list[Any]:
    from django.contrib.auth.models import Permission
    from django.db.models import Q

    query = Q(pk__in=[])
    for app_label, codenames in spec.items():
        query |= Q(content_type__app_label=app_label, codename__in=codenames)
    return list(Permission.objects.filter(query))


def roles_ensure() -> None:
    """Idempotent: the ``billing`` and ``operator`` groups with their permissions."""
    from django.contrib.auth.models import Group

    billing, _ = Group.objects.get_or_create(name=BILLING_GROUP)
    billing.permissions.add(*_permissions(BILLING_PERMISSIONS))
    operator, _ = Group.objects.get_or_create(name=OPERATOR_GROUP)
    operator.permissions.add(*_permissions(BILLING_PERMISSIONS), *_permissions(OPERATOR_EXTRA_PERMISSIONS))


def roles_ensure_after_migrate(sender: Any, **kwargs: Any) -> None:
    """post_migrate receiver: runs once per migrate, for the last app with models, when every app's permissions
    exist (Django creates each app's permissions in that app's own post_migrate)."""
    from django.apps import apps

    with_models = [config for config in apps.get_app_configs() if config.models_module is not None]
    if with_models and sender is with_models[-1]:
        roles_ensure()
