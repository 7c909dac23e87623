"""``manage.py ca_init``: make sure the CSMS's CA and its CRL exist (generated once when no files are configured)
and print their paths, e.g. before starting a TLS terminator that verifies station certificates with them."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from security import ca, certificates


class Command(BaseCommand):
    help = "Create the CSMS's CA if needed, rewrite its CRL, and print the CA certificate and CRL paths."

    def handle(self, *args: Any, **options: Any) -> None:
        authority = ca.authority()
        crl = certificates.crl_refresh()
        self.stdout.write(f"CA certificate: {authority.cert_path}")
        self.stdout.write(f"CRL: {crl}")
        if not settings.CSMS_CA_KEY_PATH:
            self.stdout.write(f"CA key (generated, mode 0600): {authority.key_path}")
