"""Tariffs and cost (block I): tariff administration with versions, the tariff a session gets, its running and final
cost, CostUpdated during sessions, ``totalCost`` and the tariff text for the station's display.

Which tariff applies is decided in one place, :func:`tariff_for`: a tariff for the session's token group (or the
token itself), else the station's tariff, else the default tariff. (Per-site tariffs slot in there, between the
station's and the default, once sites exist.) A session pins the version in force when it started; editing a
tariff makes a new version and never changes the cost of a session already under way.

The cost arithmetic is pure (transactions/cost.py); this module reads the stored events and samples for it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Exists, F, IntegerField, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone

from csms import fastorm
from devicemodel import selectors as devicemodel_selectors
from stations.commands import command_send
from stations.models import ChargingStation, Command

from . import cost, metering
from .models import ChargingTransaction, IdToken, MeterSample, Tariff, TariffVersion

logger = logging.getLogger(__name__)

CURRENCY_COMPONENT, CURRENCY_VARIABLE = "TariffCostCtrlr", "Currency"
PRICED_FIELDS = ("currency", *cost.TERM_FIELDS, "prices_include_tax", "bands")
CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")
_MAX_PRICE = Decimal("1000000")
_STORED_PLACES = Decimal("0.000001")


class TariffError(ValueError):
    """A tariff that cannot be saved as given: ``errors`` maps field names to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


# --- Administration -------------------------------------------------------------------------------------------


def tariff_snapshot(tariff: Tariff) -> dict[str, Any]:
    """The priced terms as JSON (decimal strings): what a TariffVersion keeps."""
    return {
        "name": tariff.name,
        "currency": tariff.currency,
        # As the columns store them (6 places), so an unchanged tariff read back compares equal.
        **{k: str(Decimal(getattr(tariff, k)).quantize(_STORED_PLACES)) for k in cost.TERM_FIELDS},
        "prices_include_tax": tariff.prices_include_tax,
        "bands": [
            {k: (str(Decimal(str(v))) if k in cost.PRICE_FIELDS else v) for k, v in band.items()}
            for band in tariff.bands
        ],
    }


def bands_check(bands: Any) -> list[str]:
    """Problems of a ``bands`` value (empty list: fine)."""
    if not isinstance(bands, list):
        return ["a list of {start, end, price_per_kwh?, price_per_hour?, idle_price_per_hour?}"]
    problems = []
    allowed = {"start", "end", *cost.PRICE_FIELDS}
    for i, band in enumerate(bands):
        if not isinstance(band, dict):
            problems.append(f"band {i}: an object")
            continue
        unknown = set(band) - allowed
        if unknown:
            problems.append(f"band {i}: unknown fields {sorted(unknown)}")
        for key in ("start", "end"):
            try:
                cost.parse_hhmm(str(band.get(key, "")))
            except ValueError:
                problems.append(f"band {i}: {key} must be HH:MM")
        for key in cost.PRICE_FIELDS:
            if band.get(key) is None:
                continue
            try:
                value = Decimal(str(band[key]))
            except ArithmeticError:
                problems.append(f"band {i}: {key} must be a decimal string")
                continue
            if not value.is_finite() or value < 0 or value >= _MAX_PRICE:
                problems.append(f"band {i}: {key} must be between 0 and {_MAX_PRICE}")
    return problems


def _currency_conflicts(currency: str, stations: list[ChargingStation]) -> list[str]:
    """Stations whose device model says they bill in another currency (TariffCostCtrlr.Currency)."""
    known = devicemodel_selectors.actual_values(
        station_ids=[s.pk for s in stations], component=CURRENCY_COMPONENT, variable=CURRENCY_VARIABLE
    )
    return [
        f"{s.identity} is configured for {known[s.pk]} (TariffCostCtrlr.Currency); the tariff is in {currency}"
        for s in stations
        if known.get(s.pk, "").strip() and known[s.pk].strip().upper() != currency
    ]


def tariff_problems(
    *, tariff: Tariff, stations: list[ChargingStation] | None, sites: list[Any] | None = None
) -> dict[str, list[str]]:
    """What is wrong with a tariff about to be saved (and its currency normalised): field -> messages."""
    errors: dict[str, list[str]] = {}
    tariff.currency = (tariff.currency or "").strip().upper()
    if not CURRENCY_CODE.match(tariff.currency):
        errors["currency"] = ["an ISO 4217 code of three letters, e.g. EUR"]
    for key in cost.TERM_FIELDS:
        value = Decimal(getattr(tariff, key))
        if value < 0 or value >= _MAX_PRICE:
            errors[key] = [f"between 0 and {_MAX_PRICE}"]
    if tariff.tax_rate_percent > 100:
        errors["tax_rate_percent"] = ["at most 100"]
    if band_problems := bands_check(tariff.bands):
        errors["bands"] = band_problems
    assigned = stations if stations is not None else (list(tariff.stations.all()) if tariff.pk else [])
    if assigned and "currency" not in errors:
        # OCPP SPEC-SILENT: a station whose TariffCostCtrlr.Currency the CSMS does not know yet is accepted; the
        # default and token-group tariffs name no station and are not checked (README, Tariffs and cost).
        if conflicts := _currency_conflicts(tariff.currency, assigned):
            errors["stations" if stations is not None else "currency"] = conflicts
    if sites and "currency" not in errors:
        members = list(ChargingStation.objects.filter(site_membership__site__in=sites))
        if conflicts := _currency_conflicts(tariff.currency, members):
            errors["sites"] = conflicts
    if sites:
        site_taken = (
            Tariff.sites.through.objects.filter(site_id__in=[s.pk for s in sites])
            .exclude(tariff_id=tariff.pk)
            .values_list("site__name", "tariff__name")
        )
        if site_taken:
            errors.setdefault("sites", []).extend(f"{i} already has the tariff {n!r}" for i, n in site_taken)
    if stations:
        taken = (
            Tariff.stations.through.objects.filter(chargingstation_id__in=[s.pk for s in stations])
            .exclude(tariff_id=tariff.pk)
            .values_list("chargingstation__identity", "tariff__name")
        )
        if taken:
            errors.setdefault("stations", []).extend(f"{i} already has the tariff {n!r}" for i, n in taken)
    return errors


@transaction.atomic
def tariff_save(
    *,
    tariff: Tariff,
    stations: list[ChargingStation] | None = None,
    token_groups: list[IdToken] | None = None,
    sites: list[Any] | None = None,
) -> Tariff:
    """Create or update a tariff (``stations``/``token_groups`` None: unchanged). Raises TariffError.

    A change to a priced field makes a new version, valid from now. Making a tariff the default takes that role
    from the previous default. A station has one tariff of its own: assigning it to a second one is refused, and
    so is a station whose TariffCostCtrlr.Currency (when the CSMS knows it) differs from the tariff's currency.
    """
    if errors := tariff_problems(tariff=tariff, stations=stations, sites=sites):
        raise TariffError(errors)
    if tariff.is_default:
        Tariff.objects.filter(is_default=True).exclude(pk=tariff.pk).update(is_default=False)
    creating = tariff.pk is None
    tariff.save()
    if stations is not None:
        tariff.stations.set(stations)
    if token_groups is not None:
        tariff.token_groups.set(token_groups)
    if sites is not None:
        tariff.sites.set(sites)
    terms = tariff_snapshot(tariff)
    current = None if creating else TariffVersion.objects.filter(tariff=tariff).order_by("-number").first()
    if current is None or {k: current.prices.get(k) for k in terms} != terms:
        number = (current.number if current else 0) + 1
        TariffVersion.objects.create(tariff=tariff, number=number, valid_from=timezone.now(), prices=terms)
        Tariff.objects.filter(pk=tariff.pk).update(version=number)
        tariff.version = number
    return tariff


# --- Which tariff applies -------------------------------------------------------------------------------------


def _tariff_query(station_id: int, token_ids: list[int], at: datetime) -> QuerySet[TariffVersion]:
    by_token = Exists(
        Tariff.token_groups.through.objects.filter(tariff_id=OuterRef("tariff_id"), idtoken_id__in=token_ids)
    )
    by_station = Exists(
        Tariff.stations.through.objects.filter(tariff_id=OuterRef("tariff_id"), chargingstation_id=station_id)
    )
    by_site = Exists(
        Tariff.sites.through.objects.filter(tariff_id=OuterRef("tariff_id"), site__members__station_id=station_id)
    )
    conditions = Q(by_station=True) | Q(by_site=True) | Q(tariff__is_default=True)
    if token_ids:
        conditions |= Q(by_token=True)
    return (
        TariffVersion.objects.annotate(by_token=by_token, by_station=by_station, by_site=by_site)
        .filter(conditions)
        .annotate(
            level=Case(
                When(by_token=True, then=Value(0)), When(by_station=True, then=Value(1)),
                When(by_site=True, then=Value(2)), default=Value(3),
                output_field=IntegerField(),
            ),
            later=Case(When(valid_from__gt=at, then=Value(1)), default=Value(0), output_field=IntegerField()),
            order=Case(When(valid_from__gt=at, then=F("number")), default=-F("number"), output_field=IntegerField()),
        )
        .order_by("level", "tariff_id", "later", "order")
        .values_list(*_VERSION_COLUMNS)[:1]
    )  # fmt: skip


_VERSION_COLUMNS = tuple(f.attname for f in TariffVersion._meta.concrete_fields)
_SENTINEL_AT = datetime(1901, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)
# Compiled once per number of token ids (none, the token, the token and its group): asked at every session start.
_TARIFF_FOR = {
    n: fastorm.CompiledValues(
        lambda station_id, *rest: _tariff_query(station_id, list(rest[:-1]), rest[-1]),
        sentinels=(-7_100_001, *(-7_100_002 - i for i in range(n)), _SENTINEL_AT),
    )
    for n in range(3)
}


def tariff_for(*, station: ChargingStation | int, id_token: IdToken | None, at: datetime) -> TariffVersion | None:
    """The tariff version that applies to a session of ``id_token`` at ``station`` started at ``at`` (one query,
    compiled once).

    Order: a tariff naming the token's group (or the token itself) in ``token_groups``; the station's tariff; the
    tariff of the station's site (smartcharging sites); the default tariff. Among versions, the last one valid
    from ``at`` or earlier; a tariff created after ``at`` applies with its first version. Ties: the lowest id.
    """
    station_id = station if isinstance(station, int) else station.pk
    token_ids = [pk for pk in (id_token.pk, id_token.group_id_token_id) if pk] if id_token is not None else []
    rows = _TARIFF_FOR[len(token_ids)].rows(station_id, *token_ids, at)
    if not rows:
        return None
    return TariffVersion.from_db("default", _VERSION_COLUMNS, rows[0])


def transaction_tariff_pin(txn: ChargingTransaction) -> None:
    """Give a session its tariff version (hot path: one query; first event, or when its first token arrives)."""
    version = tariff_for(station=txn.station_id, id_token=txn.token, at=txn.started_at)
    txn.tariff_version = version
    txn.currency = version.prices["currency"] if version else ""


# --- Cost ------------------------------------------------------------------------------------------------------


def tariff_time_zone() -> tzinfo:
    return ZoneInfo(settings.CSMS_TARIFF_TIME_ZONE)


def _energy_series(txn: ChargingTransaction) -> list[list[tuple[datetime, Decimal]]]:
    """The register readings of the series billed (the session meter: metering's preferred series), one query."""
    if txn.metering_state is None:
        from .services import transaction_metering_refresh

        transaction_metering_refresh(txn)
    state = metering.MeteringState.from_json(txn.metering_state or {})
    keys = state.preferred(metering.ENERGY_REGISTER)
    if not keys:
        return []
    rows = Q(pk__in=[])
    for _, phase, location in keys:
        rows |= Q(phase=phase, location=location)
    series: dict[tuple[str, str], list[tuple[datetime, Decimal]]] = {(p, loc): [] for _, p, loc in keys}
    values = MeterSample.objects.filter(rows, transaction=txn, measurand=metering.ENERGY_REGISTER).values_list(
        "phase", "location", "timestamp", "value"
    )
    for phase, location, timestamp, value in values:
        series[(phase, location)].append((timestamp, value))
    return list(series.values())


def transaction_cost(txn: ChargingTransaction, *, now: datetime | None = None) -> cost.Cost | None:
    """The session's cost from its stored events and samples (to its end, or to ``now`` while it runs); None
    without a tariff. Two queries (charging states, energy readings) and the version when not loaded."""
    if txn.tariff_version_id is None:
        return None
    terms = cost.Terms.from_snapshot(txn.tariff_version.prices)  # type: ignore[union-attr]
    states = list(txn.events.exclude(charging_state="").order_by("seq_no").values_list("timestamp", "charging_state"))
    until = txn.ended_at if txn.ended_at is not None else (now or timezone.now())
    return cost.session_cost(
        terms,
        started_at=txn.started_at,
        until=until,
        states=states,
        energy_series=_energy_series(txn),
        tz=tariff_time_zone(),
    )


def transaction_cost_store(txn: ChargingTransaction, *, now: datetime | None = None) -> cost.Cost | None:
    """Compute the cost and set it on ``txn`` (not saved): the Ended event's path and the running-cost job."""
    result = transaction_cost(txn, now=now)
    if result is not None:
        txn.cost, txn.currency, txn.cost_at = result.total, result.currency, now or timezone.now()
    return result


def total_cost_response(txn: ChargingTransaction) -> dict[str, Any]:
    """``totalCost`` for the response to an Ended TransactionEvent (central cost mode).

    # OCPP SPEC-SILENT (billing): without a tariff the field is omitted, which the spec defines as "not free";
    # 0.00 is sent only when a tariff makes the session free.
    """
    if txn.is_active or txn.cost is None:
        return {}
    return {"totalCost": float(txn.cost)}


# --- CostUpdated ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CostUpdateOutcome:
    considered: int
    sent: int


def _send_one(txn_pk: int, now: datetime) -> bool:
    with transaction.atomic():
        txn = (
            ChargingTransaction.objects.select_for_update(of=("self",))
            .select_related("station", "tariff_version")
            .filter(pk=txn_pk, is_active=True)
            .first()
        )
        if txn is None or txn.tariff_version_id is None:
            return False
        result = transaction_cost_store(txn, now=now)
        assert result is not None
        changed = txn.cost_sent != result.total
        fields = ["cost", "currency", "cost_at"]
        if changed and txn.station.is_online:
            command_send(
                station=txn.station,
                action="CostUpdated",
                payload={"totalCost": float(result.total), "transactionId": txn.transaction_id},
            )
            txn.cost_sent = result.total
            fields.append("cost_sent")
        txn.save(update_fields=fields)
        return changed and txn.station.is_online


def cost_updated_on_answered(command: Command) -> None:
    """CostUpdated answered, from any door (the job, the dashboard, the API): the station now shows that
    ``totalCost``, so the job compares later running costs with it (and sends again only when they differ)."""
    transaction_id = command.request.get("transactionId")
    total = command.request.get("totalCost")
    if not transaction_id or total is None:
        return
    ChargingTransaction.objects.filter(station_id=command.station_id, transaction_id=transaction_id).update(
        cost_sent=Decimal(str(total))
    )


def cost_updates_send(*, now: datetime | None = None) -> CostUpdateOutcome:
    """Beat job: refresh the running cost of every active session with a tariff, and send CostUpdated (through
    the command pipeline) to the online stations whose session's cost changed since the last one sent.

    Idempotent: a second run with nothing new sends nothing (``cost_sent``). Each session in its own transaction,
    under its row lock, so two overlapping runs never send the same update twice.
    """
    now = now or timezone.now()
    pks = list(
        ChargingTransaction.objects.filter(is_active=True, tariff_version__isnull=False).values_list("pk", flat=True)
    )
    sent = sum(_send_one(pk, now) for pk in pks)
    return CostUpdateOutcome(len(pks), sent)


# --- Tariff text ----------------------------------------------------------------------------------------------


def _price_text(value: Any, currency: str) -> str:
    amount = Decimal(str(value)).normalize()
    places = cost.minor_unit(currency)
    if -amount.as_tuple().exponent < places:  # type: ignore[operator]
        amount = amount.quantize(Decimal(1).scaleb(-places))
    return f"{amount:f}"


def tariff_text(version: TariffVersion) -> str:
    """The tariff as the station shows it (``CSMS_TARIFF_TEXT_TEMPLATE``; empty template: no text)."""
    template = settings.CSMS_TARIFF_TEXT_TEMPLATE
    if not template:
        return ""
    prices = version.prices
    currency = prices["currency"]
    fields = {k: _price_text(prices[k], currency) for k in (*cost.PRICE_FIELDS, "session_fee")}
    try:
        text = template.format(name=prices.get("name", ""), currency=currency, **fields)
    except (KeyError, IndexError, ValueError):
        logger.warning("CSMS_TARIFF_TEXT_TEMPLATE %r cannot be formatted", template)
        return ""
    return text[:512]


def personal_message(version: TariffVersion | None) -> dict[str, str] | None:
    """MessageContentType with the tariff text, for idTokenInfo.personalMessage (None: nothing to show)."""
    if version is None:
        return None
    text = tariff_text(version)
    return {"format": "UTF8", "content": text} if text else None


def id_token_info_with_tariff(info: dict[str, Any], *, version: TariffVersion | None) -> dict[str, Any]:
    """An Accepted idTokenInfo with the tariff text as personalMessage (Authorize, TransactionEvent Started)."""
    if info.get("status") != "Accepted":
        return info
    message = personal_message(version)
    return {**info, "personalMessage": message} if message else info
