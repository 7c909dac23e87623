from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from security.tls import KEY_TYPES, daphne_endpoint, selfsigned_write


class Command(BaseCommand):
    help = (
        "Generate a self-signed server certificate for daphne's own TLS (CSMS_TLS_CERT_FILE, CSMS_TLS_KEY_FILE) "
        "unless both files exist; --endpoint prints daphne's -e endpoint for it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", action="append", dest="hosts", help="DNS name or IP (repeatable)")
        parser.add_argument("--key-type", choices=KEY_TYPES, default="ecdsa")
        parser.add_argument("--force", action="store_true", help="replace existing files")
        parser.add_argument("--endpoint", type=int, metavar="PORT", help="print the daphne -e endpoint for PORT")
        parser.add_argument("--interface", default="127.0.0.1")

    def handle(self, *args: Any, **options: Any) -> None:
        cert, key = Path(settings.CSMS_TLS_CERT_FILE), Path(settings.CSMS_TLS_KEY_FILE)
        if options["force"] or not (cert.exists() and key.exists()):
            hosts = options["hosts"] or ["localhost", "127.0.0.1", "::1"]
            selfsigned_write(cert_file=cert, key_file=key, hosts=hosts, key_type=options["key_type"])
            self.stderr.write(f"wrote a self-signed {options['key_type']} certificate for {', '.join(hosts)}: {cert}")
        if options["endpoint"]:
            self.stdout.write(
                daphne_endpoint(
                    port=options["endpoint"], interface=options["interface"], cert_file=str(cert), key_file=str(key)
                )
            )
