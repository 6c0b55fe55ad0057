"""Import a v2-model Function App and index its functions, as the Python worker does at start-up."""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
from azure.functions.decorators.core import BindingDirection

from devhost.config import parse_timespan
from devhost.routing import RouteTemplate

ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")

_INDEX_LOCK = threading.Lock()
# get_functions() may be called only once per FunctionApp object: keep the result (and the app alive).
_INDEXED: dict[int, tuple[Any, list[Any]]] = {}


class AppIndexError(RuntimeError):
    """The app module cannot be imported or uses something the devhost does not support."""


@dataclass(frozen=True)
class QueueOutput:
    arg_name: str
    queue_name: str
    connection: str | None


@dataclass(frozen=True)
class FunctionInfo:
    name: str
    user_function: Callable[..., Any]
    trigger_arg: str
    is_async: bool
    queue_outputs: tuple[QueueOutput, ...] = ()
    wants_context: bool = False


@dataclass(frozen=True)
class HttpFunction(FunctionInfo):
    route: RouteTemplate = field(default_factory=lambda: RouteTemplate(""))
    methods: tuple[str, ...] = ALL_METHODS


@dataclass(frozen=True)
class QueueFunction(FunctionInfo):
    queue_name: str = ""
    connection: str | None = None


@dataclass(frozen=True)
class TimerFunction(FunctionInfo):
    schedule: str = ""
    run_on_startup: bool = False
    use_monitor: bool | None = None
    retry: RetryPolicy | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """``@app.retry`` (timer triggers): fixed_delay or exponential_backoff; max_retries -1 = no limit."""

    strategy: str
    max_retries: int
    delay: float = 0.0  # fixed_delay
    minimum: float = 0.0  # exponential_backoff
    maximum: float = 0.0

    def delay_before(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        if self.strategy == "fixed_delay":
            return self.delay
        return float(min(self.maximum, self.minimum * 2 ** (retry - 1)))

    @classmethod
    def from_settings(cls, name: str, settings: dict[str, Any] | None) -> RetryPolicy | None:
        if not settings:
            return None
        strategy = str(settings.get("strategy", "")).lower()
        try:
            max_retries = int(settings.get("max_retry_count", 0))
            if strategy == "fixed_delay":
                return cls(strategy, max_retries, delay=parse_timespan(str(settings["delay_interval"])))
            if strategy == "exponential_backoff":
                return cls(
                    strategy,
                    max_retries,
                    minimum=parse_timespan(str(settings["minimum_interval"])),
                    maximum=parse_timespan(str(settings["maximum_interval"])),
                )
        except (KeyError, ValueError) as exc:
            raise AppIndexError(f"function {name}: bad retry policy ({exc})") from exc
        raise AppIndexError(f"function {name}: unknown retry strategy {strategy!r}")


@dataclass
class AppIndex:
    http: list[HttpFunction] = field(default_factory=list)
    queues: list[QueueFunction] = field(default_factory=list)
    timers: list[TimerFunction] = field(default_factory=list)


def find_app(module_name: str) -> func.FunctionApp:
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise AppIndexError(f"cannot import app module {module_name!r}: {type(exc).__name__}: {exc}") from exc
    app = getattr(module, "app", None)
    if not isinstance(app, func.FunctionApp):
        candidates = [v for v in vars(module).values() if isinstance(v, func.FunctionApp)]
        if len(candidates) != 1:
            raise AppIndexError(f"module {module_name!r} must define exactly one azure.functions.FunctionApp")
        app = candidates[0]
    return app


def app_functions(app: func.FunctionApp) -> list[Any]:
    """``app.get_functions()``, called once per app object (a second call raises in the SDK)."""
    with _INDEX_LOCK:
        cached = _INDEXED.get(id(app))
        if cached is not None and cached[0] is app:
            return cached[1]
        functions = list(app.get_functions())
        _INDEXED[id(app)] = (app, functions)
        return functions


def _enum_value(value: Any) -> Any:
    return getattr(value, "value", value)


def index_app(app: func.FunctionApp) -> AppIndex:
    index = AppIndex()
    for function in app_functions(app):
        name = function.get_function_name()
        trigger = function.get_trigger()
        user_function = function.get_user_function()
        parameters = inspect.signature(user_function).parameters
        outputs: list[QueueOutput] = []
        for binding in function.get_bindings():
            kind = str(_enum_value(binding.type))
            direction = _enum_value(binding.direction)
            if binding is trigger or kind == "http":
                continue
            if kind == "queue" and direction == BindingDirection.OUT.value:
                spec = binding.get_dict_repr()
                outputs.append(QueueOutput(binding.name, spec["queueName"], spec.get("connection")))
                continue
            raise AppIndexError(
                f"function {name}: binding {binding.name!r} of type {kind!r} is not supported"
            )
        common: dict[str, Any] = {
            "name": name,
            "user_function": user_function,
            "trigger_arg": trigger.name,
            "is_async": inspect.iscoroutinefunction(user_function),
            "queue_outputs": tuple(outputs),
            "wants_context": "context" in parameters,
        }
        trigger_type = str(_enum_value(trigger.type))
        if trigger_type == "httpTrigger":
            methods = getattr(trigger, "methods", None)
            route = getattr(trigger, "route", None) or name
            index.http.append(
                HttpFunction(
                    **common,
                    route=RouteTemplate(route),
                    methods=tuple(str(_enum_value(m)).upper() for m in methods) if methods else ALL_METHODS,
                )
            )
        elif trigger_type == "queueTrigger":
            index.queues.append(
                QueueFunction(**common, queue_name=trigger.queue_name, connection=trigger.connection)
            )
        elif trigger_type == "timerTrigger":
            index.timers.append(
                TimerFunction(
                    **common,
                    schedule=trigger.schedule,
                    run_on_startup=bool(getattr(trigger, "run_on_startup", False)),
                    use_monitor=getattr(trigger, "use_monitor", None),
                    retry=RetryPolicy.from_settings(name, function.get_settings_dict("retry_policy")),
                )
            )
        else:
            raise AppIndexError(
                f"function {name}: trigger type {trigger_type!r} is not supported by the devhost"
            )
    index.http.sort(key=lambda f: f.route.rank)
    return index
