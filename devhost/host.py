"""DevHost: HTTP server + queue listeners + timers for one Function App module, in this process."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from devhost.config import HostConfig, HostConfigError, apply_settings, restore_settings
from devhost.http import MAX_BODY_BYTES, FunctionsHttpServer
from devhost.index import AppIndex, find_app, index_app
from devhost.invoke import Invoker
from devhost.queues import DEFAULT_PROCESSING_LEASE, QueueClients, QueueListener, connection_string
from devhost.singleton import TimerLock
from devhost.timers import TimerRunner

log = logging.getLogger("devhost")


def _clear_app_settings_cache() -> None:
    """The app reads settings once (core.settings.get_settings is cached): make it see ours."""
    settings_module = sys.modules.get("core.settings")
    get_settings = getattr(settings_module, "get_settings", None)
    cache_clear = getattr(get_settings, "cache_clear", None)
    if callable(cache_clear):
        cache_clear()


class DevHost:
    """Serve an app module's functions locally.

    ``settings`` are put into ``os.environ`` before the app is imported (they win over the environment
    unless ``settings_override=False``; the CLI passes local.settings.json that way, so the real
    environment wins) and restored on ``stop()``. ``host_json`` / ``host_overrides`` configure the host
    (route prefix, queue options) like host.json does.
    """

    def __init__(
        self,
        app_module: str = "function_app",
        settings: Mapping[str, str] | None = None,
        port: int = 0,
        *,
        host_json: Path | None = None,
        host_overrides: Mapping[str, Any] | None = None,
        settings_override: bool = True,
        max_body_bytes: int = MAX_BODY_BYTES,
        enable_queues: bool = True,
        enable_timers: bool = True,
        timer_singleton: bool = True,
        cors_origins: tuple[str, ...] = (),
    ) -> None:
        self.app_module = app_module
        self.settings = dict(settings or {})
        self.port = port
        self.host_json = host_json
        self.host_overrides = dict(host_overrides or {})
        self.settings_override = settings_override
        self.max_body_bytes = max_body_bytes
        self.enable_queues = enable_queues
        self.enable_timers = enable_timers
        self.timer_singleton = timer_singleton
        self.cors_origins = cors_origins
        self.index: AppIndex | None = None
        self.base_url = ""
        self._previous_env: dict[str, str | None] = {}
        self._server: FunctionsHttpServer | None = None
        self._server_thread: threading.Thread | None = None
        self._invoker: Invoker | None = None
        self._listeners: list[QueueListener] = []
        self._timers: list[TimerRunner] = []
        self._stopped = threading.Event()
        self._started = False

    def start(self) -> str:
        """Import and index the app, start serving; returns the base URL (``http://127.0.0.1:<port>``)."""
        if self._started:
            raise RuntimeError("DevHost already started")
        self._started = True
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> str:
        config = HostConfig.load(self.host_json, self.host_overrides)
        self._previous_env = apply_settings(self.settings, override=self.settings_override)
        _clear_app_settings_cache()
        self.index = index = index_app(find_app(self.app_module))
        env = os.environ
        clients = QueueClients(env)
        encoding = config.queues.message_encoding
        self._invoker = invoker = Invoker(
            send_to_queue=lambda conn, queue, bodies: clients.send(conn, queue, bodies, encoding)
        )
        self._server = FunctionsHttpServer(
            self.port,
            index.http,
            config.route_prefix,
            invoker,
            max_body_bytes=self.max_body_bytes,
            cors_origins=self.cors_origins,
        )
        self.port = int(self._server.server_address[1])
        self.base_url = f"http://127.0.0.1:{self.port}"
        lease = int(config.function_timeout or DEFAULT_PROCESSING_LEASE)
        if self.enable_queues:
            self._listeners = [QueueListener(f, clients, config.queues, invoker, lease) for f in index.queues]
        if self.enable_timers:
            self._timers = [TimerRunner(f, env, invoker, lock=self._timer_lock(f.name)) for f in index.timers]
        self._server_thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="devhost-http", daemon=True
        )
        self._server_thread.start()
        for listener in self._listeners:
            listener.start()
        for timer in self._timers:
            timer.start()
        for function in index.http:
            log.info(
                "  %s: [%s] %s/%s",
                function.name,
                ",".join(function.methods),
                self.base_url,
                "/".join(p for p in (config.route_prefix, function.route.template) if p),
            )
        for queue_function in index.queues:
            log.info("  %s: queueTrigger %s", queue_function.name, queue_function.queue_name)
        for timer_function in index.timers:
            log.info("  %s: timerTrigger %s", timer_function.name, timer_function.schedule)
        log.info("devhost ready at %s (app %s)", self.base_url, self.app_module)
        return self.base_url

    def _timer_lock(self, function_name: str) -> TimerLock | None:
        if not self.timer_singleton:
            return None
        try:
            connection = connection_string(None, os.environ)
        except HostConfigError:
            log.warning("timer %s: no AzureWebJobsStorage for its lock: it fires here", function_name)
            return None
        host_id = os.environ.get("AzureFunctionsWebHost__hostid") or self.app_module
        return TimerLock(connection, host_id.lower(), function_name)

    def stop(self) -> None:
        """Stop accepting work, finish what is in flight, release the port. Idempotent."""
        if self._stopped.is_set():
            return
        if self._server is not None and self._server_thread is not None:
            self._server.graceful_stop()
            self._server_thread.join()
        elif self._server is not None:
            self._server.server_close()
        for listener in self._listeners:
            listener.stop()
        for timer in self._timers:
            timer.stop()
        if self._invoker is not None:
            self._invoker.close()
        restore_settings(self._previous_env)
        _clear_app_settings_cache()
        self._stopped.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    def __enter__(self) -> DevHost:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
