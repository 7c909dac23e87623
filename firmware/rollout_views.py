"""Pages of firmware images and rollouts (block L): the image list and upload, a rollout's creation, its page with
per-station states and a progress bar that htmx refreshes every 2 s, cancel. Thin: services change, views show."""

from __future__ import annotations

from datetime import datetime, time

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.dateparse import parse_datetime, parse_time
from django.views.decorators.http import require_POST

from . import images, rollouts
from .models import FirmwareImage, FirmwarePublication, FirmwareRollout, RolloutState

PROGRESS_POLL_S = 2


@login_required
@permission_required("firmware.view_firmwareimage", raise_exception=True)
def firmware_list(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        if not request.user.has_perm("firmware.add_firmwareimage"):
            return HttpResponse("you may not upload firmware", status=403)
        upload = request.FILES.get("file")
        try:
            if upload is None:
                raise images.FirmwareImageError("choose a firmware file")
            image = images.firmware_image_upload(
                file=upload,
                name=upload.name or "firmware.bin",
                version=request.POST.get("version", ""),
                signing_certificate=request.POST.get("signing_certificate", ""),
                signature=request.POST.get("signature", ""),
                user=request.user,
            )
        except images.FirmwareImageError as exc:
            messages.error(request, f"Upload refused: {exc}")
        else:
            messages.success(request, f"Firmware {image.version} uploaded (MD5 {image.md5_hex}).")
            return redirect("firmware-list")
    return render(
        request,
        "firmware/rollout_firmware_list.html",
        {
            "images": FirmwareImage.objects.all()[:100],
            "rollouts": FirmwareRollout.objects.select_related("firmware")[:50],
            "publications": FirmwarePublication.objects.select_related("station", "firmware")[:50],
        },
    )


def _time(raw: str) -> time | None:
    return parse_time(raw) if raw else None


def _datetime(raw: str) -> datetime | None:
    return parse_datetime(raw) if raw else None


@login_required
@permission_required("firmware.add_firmwarerollout", raise_exception=True)
def rollout_new(request: HttpRequest) -> HttpResponse:
    form = request.POST if request.method == "POST" else request.GET
    if request.method == "POST":
        identities = [i.strip() for i in form.get("stations", "").replace(",", "\n").splitlines() if i.strip()]
        try:
            image = FirmwareImage.objects.filter(pk=int(form.get("firmware") or 0)).first()
            if image is None:
                raise rollouts.RolloutError("choose a firmware image")
            stations = rollouts.rollout_targets(
                identities=identities or None,
                vendor=form.get("vendor", "").strip(),
                model=form.get("model", "").strip(),
                firmware_version=form.get("current_firmware", "").strip(),
            )
            rollout = rollouts.rollout_create(
                firmware=image,
                stations=list(stations),
                wave_size=int(form.get("wave_size") or 10),
                max_concurrent=int(form.get("max_concurrent") or 10),
                retrieve_at=_datetime(form.get("retrieve_at", "")),
                install_at=_datetime(form.get("install_at", "")),
                window_start=_time(form.get("window_start", "")),
                window_end=_time(form.get("window_end", "")),
                window_timezone=form.get("window_timezone", "") or "UTC",
                halt_failure_share=float(form["halt_failure_share"]) if form.get("halt_failure_share") else None,
                user=request.user,
            )
        except (rollouts.RolloutError, ValueError) as exc:
            messages.error(request, f"Rollout not started: {exc}")
        else:
            return redirect("firmware-rollout", pk=rollout.pk)
    return render(request, "firmware/rollout_new.html", {"images": FirmwareImage.objects.all()[:100], "form": form})


def _rollout(pk: int) -> FirmwareRollout:
    return get_object_or_404(FirmwareRollout.objects.select_related("firmware"), pk=pk)


def _progress_context(rollout: FirmwareRollout) -> dict[str, object]:
    return {
        "rollout": rollout,
        "summary": rollouts.rollout_summary(rollout),
        "targets": rollout.stations.select_related("station", "update"),
        "live": rollout.state == RolloutState.RUNNING or rollouts.rollout_summary(rollout)["in_progress"],
        "poll_s": PROGRESS_POLL_S,
    }


@login_required
@permission_required("firmware.view_firmwarerollout", raise_exception=True)
def rollout_detail(request: HttpRequest, pk: int) -> HttpResponse:
    rollout = _rollout(pk)
    context = _progress_context(rollout)
    context["can_cancel"] = request.user.has_perm("firmware.change_firmwarerollout") and rollout.state in (
        RolloutState.RUNNING,
        RolloutState.HALTED,
    )
    return render(request, "firmware/rollout_detail.html", context)


@login_required
@permission_required("firmware.view_firmwarerollout", raise_exception=True)
def rollout_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress bar and the station table (htmx polls it every 2 s while the rollout moves)."""
    return render(request, "firmware/rollout_progress.html", _progress_context(_rollout(pk)))


@login_required
@permission_required("firmware.change_firmwarerollout", raise_exception=True)
@require_POST
def rollout_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    rollout = _rollout(pk)
    try:
        stopped = rollouts.rollout_cancel(rollout=rollout)
    except rollouts.RolloutError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Rollout cancelled: {stopped} stations not sent. Stations already sent go on.")
    return redirect("firmware-rollout", pk=pk)
