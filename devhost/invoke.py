"""Calling user functions: sync ones on the calling worker thread, async ones on one shared event loop
(as the Python worker does), with queue output bindings and an optional ``context`` argument."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import azure.functions as func

from devhost.index import FunctionInfo

T = TypeVar("T")
SendToQueue = Callable[[str | None, str, list[str]], None]


class OutValue(func.Out[T]):
    """Concrete ``func.Out`` for output bindings."""

    def __init__(self) -> None:
        self._value: T | None = None
        self.was_set = False

    def set(self, val: T) -> None:
        self._value = val
        self.was_set = True

    def get(self) -> T:
        return self._value  # type: ignore[return-value]


class InvocationContext(func.Context):
    def __init__(self, function_name: str) -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return ""

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None

    @property
    def thread_local_storage(self) -> Any:
        return threading.local()


class AsyncRunner:
    """One event loop in a daemon thread for every async user function of the host."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, coroutine: Any) -> Any:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, name="devhost-async", daemon=True)
                self._thread.start()
                self._loop = loop
            loop = self._loop
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, loop)
        return future.result()

    def close(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()


def _queue_values(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    out: list[str] = []
    for item in items:
        if isinstance(item, bytes):
            out.append(item.decode("utf-8"))
        elif isinstance(item, str):
            out.append(item)
        else:
            raise TypeError(f"queue output must be str, bytes or a list of them, not {type(item).__name__}")
    return out


class Invoker:
    def __init__(self, send_to_queue: SendToQueue | None = None) -> None:
        self._async = AsyncRunner()
        self._send_to_queue = send_to_queue

    def invoke(self, function: FunctionInfo, trigger_value: Any) -> Any:
        kwargs: dict[str, Any] = {function.trigger_arg: trigger_value}
        outputs: dict[str, OutValue[Any]] = {}
        for output in function.queue_outputs:
            outputs[output.arg_name] = kwargs[output.arg_name] = OutValue()
        if function.wants_context:
            kwargs["context"] = InvocationContext(function.name)
        if function.is_async:
            result = self._async.run(function.user_function(**kwargs))
        else:
            result = function.user_function(**kwargs)
        for output in function.queue_outputs:
            holder = outputs[output.arg_name]
            if holder.was_set and self._send_to_queue is not None:
                self._send_to_queue(output.connection, output.queue_name, _queue_values(holder.get()))
        return result

    def close(self) -> None:
        self._async.close()
