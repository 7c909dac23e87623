"""The FTP side of the stations' file server (pyftpdlib): the same per-request upload slots as HTTP.

A station given ``ftp://USER:PASSWORD@host:port/`` logs in with the two halves of its slot's token. Its session
sees one fresh, empty virtual directory (``/``) and may only change into it, list it and store files into it: no
download (``RETR``), no delete, rename or mkdir, and nothing outside it (pyftpdlib's virtual file system confines
every path to the home directory). A stored file larger than the slot's limit is cut off (552) and dropped; a
complete one is moved into Django storage and attached to the slot before the ``226`` reply, so the station is
told ``226`` only once the file is kept (``550`` when the slot was used or expired meanwhile). A used or expired
slot cannot log in. Run by ``manage.py fileserver_ftp`` (``make run`` starts it beside daphne; docker-compose's
``ftp`` service).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from pyftpdlib.authorizers import AuthenticationFailed
from pyftpdlib.handlers import DTPHandler, FTPHandler
from pyftpdlib.servers import ThreadedFTPServer

from . import fileserver

logger = logging.getLogger(__name__)

PERMS = "elw"  # cd, list (its own empty directory), store; never read, delete, rename, mkdir


class SlotAuthorizer:
    """pyftpdlib authorizer: a user is an open FTP upload slot (user + password = its token)."""

    def validate_authentication(self, username: str, password: str, handler: SlotFTPHandler) -> None:
        close_old_connections()
        try:
            slot = fileserver.ftp_slot_open(user=username, password=password)
        except fileserver.UploadRefused as refused:
            raise AuthenticationFailed(refused.message) from refused
        finally:
            close_old_connections()
        handler.slot = slot
        handler.home = tempfile.mkdtemp(prefix=f"slot-{slot.pk}-", dir=ftp_incoming_dir())

    def get_home_dir(self, username: str) -> str:
        return ""  # per session: SlotFTPHandler.home

    def has_user(self, username: str) -> bool:
        return True

    def has_perm(self, username: str, perm: str, path: str | None = None) -> bool:
        return perm in PERMS

    def get_perms(self, username: str) -> str:
        return PERMS

    def get_msg_login(self, username: str) -> str:
        return "Upload slot open."

    def get_msg_quit(self, username: str) -> str:
        return "Goodbye."

    def impersonate_user(self, username: str, password: str) -> None:
        pass

    def terminate_impersonation(self, username: str) -> None:
        pass


class SlotDTPHandler(DTPHandler):
    """Data channel enforcing the slot's size limit while receiving and storing the file before replying."""

    cmd_channel: SlotFTPHandler

    def handle_read(self) -> None:
        super().handle_read()
        slot = self.cmd_channel.slot
        if slot is not None and self.tot_bytes_received > slot.max_bytes and not self._closed:
            self._resp = (f"552 The upload is larger than the limit of {slot.max_bytes} bytes.", logger.info)
            self.transfer_finished = False
            self.close()

    handle_read_event = handle_read

    def close(self) -> None:
        if (
            not self._closed
            and self.receive
            and self.transfer_finished
            and self.file_obj is not None
            and self._resp
            and self._resp[0].startswith("226")
        ):
            self.file_obj.close()
            error = self.cmd_channel.slot_store(self.file_obj.name)
            if error:
                self._resp = (error, logger.info)
                self.transfer_finished = False
        super().close()


class SlotFTPHandler(FTPHandler):
    slot: fileserver.OpenSlot | None = None
    home: str = ""
    stored: bool = False
    dtp_handler = SlotDTPHandler
    authorizer = SlotAuthorizer()
    permit_foreign_addresses = False
    banner = "CSMS file server: uploads only."

    def handle_auth_success(self, home: str, password: str, msg_login: str) -> None:
        super().handle_auth_success(self.home, password, msg_login)

    def ftp_STOR(self, file: str, mode: str = "w") -> Any:
        if self.stored:
            self.respond("550 This upload slot already holds its file.")
            return None
        if "a" in mode or getattr(self, "_restart_position", False):
            self.respond("550 Append and resume are not supported: store the whole file.")
            self._restart_position = 0
            return None
        return super().ftp_STOR(file, mode)

    def slot_store(self, path: str) -> str:
        """Move a received file into storage; '' when kept, else the FTP reply."""
        assert self.slot is not None
        close_old_connections()
        try:
            with open(path, "rb") as content:
                fileserver.upload_store(
                    slot_pk=self.slot.pk,
                    content=content,
                    size_bytes=os.path.getsize(path),
                    filename=Path(path).name,
                    via="ftp",
                )
        except fileserver.UploadRefused as refused:
            return f"{552 if refused.status == 413 else 550} {refused.message}."
        except Exception:
            logger.exception("FTP upload of slot %s could not be stored", self.slot.pk)
            return "451 The file could not be stored."
        finally:
            close_old_connections()
            Path(path).unlink(missing_ok=True)
        self.stored = True
        return ""

    def on_incomplete_file_received(self, file: str) -> None:
        Path(file).unlink(missing_ok=True)

    def close(self) -> None:
        if self.home:
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = ""
        super().close()
        connection.close()  # the session's thread ends: its database connection too


def ftp_incoming_dir() -> str:
    path = Path(settings.CSMS_FTP_INCOMING_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def passive_ports(spec: str) -> list[int]:
    """``"30000-30009"`` or ``"30000,30001"`` -> ports; empty: any (the OS chooses)."""
    ports: list[int] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        low, _, high = item.partition("-")
        ports.extend(range(int(low), int(high or low) + 1))
    return ports


def ftp_server(*, host: str, port: int) -> ThreadedFTPServer:
    """The FTP server on ``host:port`` (one thread per session: the ORM work stays off the others' loop)."""

    class Handler(SlotFTPHandler):
        pass

    ports = passive_ports(settings.CSMS_FTP_PASSIVE_PORTS)
    if ports:
        Handler.passive_ports = ports
    if settings.CSMS_FTP_MASQUERADE_ADDRESS:
        Handler.masquerade_address = settings.CSMS_FTP_MASQUERADE_ADDRESS
    Handler.timeout = 120
    server = ThreadedFTPServer((host, port), Handler)
    server.max_cons = 256
    server.max_cons_per_ip = 16
    return server
