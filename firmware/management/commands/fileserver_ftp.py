"""``manage.py fileserver_ftp``: the stations' FTP upload server (see ``firmware.ftp``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from firmware.ftp import ftp_server


class Command(BaseCommand):
    help = "Run the FTP server for stations' uploads (per-request slots, as the HTTP upload URLs)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.CSMS_FTP_BIND, help="bind address (CSMS_FTP_BIND)")
        parser.add_argument("--port", type=int, default=settings.CSMS_FTP_PORT, help="port (CSMS_FTP_PORT)")

    def handle(self, *args: Any, **options: Any) -> None:
        server = ftp_server(host=options["host"], port=options["port"])
        self.stdout.write(f"FTP upload server on {options['host']}:{options['port']}", ending="\n")
        self.stdout.flush()
        try:
            server.serve_forever(handle_exit=True)
        finally:
            server.close_all()
