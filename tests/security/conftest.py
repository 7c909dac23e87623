from __future__ import annotations

from tests.api.conftest import clear_cache, close_thread_connections, tokens  # noqa: F401 - shared fixtures
