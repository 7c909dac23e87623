"""Firmware images: the signature is checked against the signing certificate at upload; MD5 stored; downloads."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from firmware.downloads import firmware_download_url
from firmware.images import FirmwareImageError, firmware_image_upload
from firmware.models import FirmwareImage
from tests.firmware.factories import certificate_pem, sign, signing_key

pytestmark = pytest.mark.django_db
DATA = b"\x7fELF firmware image " * 500


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = str(tmp_path)


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_a_good_signature_is_accepted_and_the_checksums_are_stored(kind: str) -> None:
    key = signing_key(kind)
    image = firmware_image_upload(
        file=io.BytesIO(DATA),
        name="fw.bin",
        version="3.1",
        signing_certificate=certificate_pem(key),
        signature=sign(key, DATA),
    )
    image.refresh_from_db()
    assert image.md5_hex == hashlib.md5(DATA).hexdigest()
    assert image.sha256_hex == hashlib.sha256(DATA).hexdigest()
    assert image.size_bytes == len(DATA)
    with image.file.open("rb") as stored:
        assert stored.read() == DATA


def test_a_signature_over_other_bytes_is_refused_and_nothing_stored() -> None:
    key = signing_key()
    with pytest.raises(FirmwareImageError, match="does not verify"):
        firmware_image_upload(
            file=io.BytesIO(DATA),
            name="fw.bin",
            version="3.1",
            signing_certificate=certificate_pem(key),
            signature=sign(key, DATA + b"tampered"),
        )
    assert not FirmwareImage.objects.exists()


def test_a_signature_by_another_key_than_the_certificate_is_refused() -> None:
    with pytest.raises(FirmwareImageError, match="does not verify"):
        firmware_image_upload(
            file=io.BytesIO(DATA),
            name="fw.bin",
            version="3.1",
            signing_certificate=certificate_pem(signing_key()),
            signature=sign(signing_key(), DATA),
        )
    assert not FirmwareImage.objects.exists()


def test_api_upload_answers_400_with_a_clear_message_for_a_wrong_certificate(admin_client: Client) -> None:
    response = admin_client.post(
        "/api/v1/firmware/",
        {
            "file": io.BytesIO(DATA),
            "version": "3.1",
            "signing_certificate": certificate_pem(signing_key()),
            "signature": sign(signing_key(), DATA),
        },
    )
    assert response.status_code == 400
    assert "does not verify over the file's SHA-256" in response.json()["detail"]
    response = admin_client.post(
        "/api/v1/firmware/",
        {"file": io.BytesIO(DATA), "version": "3.1", "signing_certificate": "nope", "signature": "AA=="},
    )
    assert response.status_code == 400
    assert "not a PEM X.509 certificate" in response.json()["detail"]


def test_api_upload_and_list(admin_client: Client) -> None:
    key = signing_key()
    upload = io.BytesIO(DATA)
    upload.name = "fw-3.2.bin"
    response = admin_client.post(
        "/api/v1/firmware/",
        {"file": upload, "version": "3.2", "signing_certificate": certificate_pem(key), "signature": sign(key, DATA)},
    )
    assert response.status_code == 201, response.content
    assert response.json()["md5_hex"] == hashlib.md5(DATA).hexdigest()
    listed = admin_client.get("/api/v1/firmware/").json()
    assert [r["version"] for r in listed["results"]] == ["3.2"]


def test_the_signed_download_url_serves_the_file_until_it_expires(client: Client) -> None:
    image = firmware_image_upload(file=io.BytesIO(DATA), name="fw.bin", version="3.3")
    url = firmware_download_url(image=image, valid_until=timezone.now() + dt.timedelta(hours=1))
    assert len(url) <= 512
    path = url.removeprefix("http://127.0.0.1:8000")
    response = client.get(path)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == DATA  # type: ignore[attr-defined]
    expired = firmware_download_url(image=image, valid_until=timezone.now() - dt.timedelta(seconds=1))
    assert client.get(expired.removeprefix("http://127.0.0.1:8000")).status_code == 410
    assert client.get(path.replace("/fw/", "/fw/x")).status_code == 404


def test_the_firmware_page_and_the_admin_refuse_a_bad_signature(admin_client: Client) -> None:
    key = signing_key()
    fields = {"version": "7.0", "signing_certificate": certificate_pem(key), "signature": sign(key, b"other")}
    page = admin_client.post("/firmware/", {"file": io.BytesIO(DATA), **fields}, follow=True)
    assert "Upload refused: the signature does not verify" in page.content.decode()
    form = admin_client.post("/admin/firmware/firmwareimage/add/", {"file": io.BytesIO(DATA), **fields})
    assert form.status_code == 200 and "does not verify" in form.content.decode()
    assert not FirmwareImage.objects.exists()
    fields["signature"] = sign(key, DATA)
    upload = io.BytesIO(DATA)
    upload.name = "fw-7.bin"
    admin_client.post("/admin/firmware/firmwareimage/add/", {"file": upload, **fields})
    assert FirmwareImage.objects.get().md5_hex == hashlib.md5(DATA).hexdigest()
