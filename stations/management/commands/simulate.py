"""``python manage.py simulate``: simulated stations against a running CSMS (a live demo with ``make run``)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandParser

from bench.simulator import Simulator

# Scenario file keys (YAML or JSON); command-line flags override them.
DEFAULTS: dict[str, Any] = {
    "url": "ws://127.0.0.1:8000",
    "stations": 5,
    "evses": 2,
    "prefix": "SIM",
    "duration_s": 120,
    "heartbeat_s": None,  # None: the interval the CSMS gives at boot
    "session_every_s": 30,
    "session_updates": 3,
    "meter_interval_s": 5,
    "password": None,
    "statuses": {},  # answers to CSMS requests, e.g. {"Reset": "Rejected"}; default Accepted
    "register": False,
}


class Command(BaseCommand):
    help = "Simulate N OCPP 2.0.1 stations with M EVSEs each: boot, heartbeats, status, charging sessions."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scenario", type=Path, help="YAML/JSON file with the keys below")
        parser.add_argument("--url", help="CSMS base URL (default ws://127.0.0.1:8000)")
        parser.add_argument("--stations", type=int)
        parser.add_argument("--evses", type=int)
        parser.add_argument("--prefix", help="identity prefix: <prefix>-00001, ...")
        parser.add_argument("--duration", type=float, dest="duration_s", help="seconds to run (bounded)")
        parser.add_argument("--heartbeat", type=float, dest="heartbeat_s")
        parser.add_argument("--session-every", type=float, dest="session_every_s")
        parser.add_argument("--meter-interval", type=float, dest="meter_interval_s")
        parser.add_argument("--password", help="HTTP Basic password (security profile 1)")
        parser.add_argument("--answer", action="append", default=[], metavar="ACTION=STATUS",
                            help="status of our answer to a CSMS request, e.g. --answer Reset=Rejected")  # fmt: skip
        parser.add_argument("--register", action="store_true", help="register the identities in this CSMS's DB first")

    def handle(self, *args: Any, **options: Any) -> None:
        config = dict(DEFAULTS)
        if options["scenario"]:
            text = options["scenario"].read_text()
            config |= json.loads(text) if options["scenario"].suffix == ".json" else yaml.safe_load(text)
        config |= {k: v for k, v in options.items() if k in DEFAULTS and v not in (None, False)}
        for item in options["answer"]:
            action, _, status = item.partition("=")
            config["statuses"] = {**config["statuses"], action: status}
        sim = Simulator(
            config["url"],
            int(config["stations"]),
            prefix=config["prefix"],
            evses=int(config["evses"]),
            password=config["password"],
            statuses=config["statuses"],
        )
        if config["register"]:
            from stations.services import station_register

            for station in sim.stations:
                station_register(identity=station.identity, password=config["password"])
        logging.getLogger("bench").setLevel(logging.INFO)
        self.stdout.write(
            f"{len(sim.stations)} stations x {config['evses']} EVSEs -> {config['url']} for {config['duration_s']} s"
        )
        asyncio.run(self._run(sim, config))
        calls = sum(len(v) for v in sim.stats.latencies.values())
        self.stdout.write(f"done: {calls} CALLs answered, errors: {sim.stats.errors or 'none'}, "
                          f"CSMS requests answered: {sim.stats.answered_calls}")  # fmt: skip

    async def _run(self, sim: Simulator, config: dict[str, Any]) -> None:
        try:
            await sim.run(
                float(config["duration_s"]),
                heartbeat_s=config["heartbeat_s"],
                session_every_s=float(config["session_every_s"]),
                session_updates=int(config["session_updates"]),
                meter_interval_s=float(config["meter_interval_s"]),
            )
        finally:
            await sim.close()
