"""A tiny Function App used only by the devhost tests: HTTP routes, a queue trigger that fails on purpose,
and a timer. Invocations of the queue and timer functions are appended as JSON lines to the file named by
SAMPLE_RECORD_FILE, so tests (and several devhost processes at once) can observe them."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import threading
import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

_record_lock = threading.Lock()
_active_lock = threading.Lock()
_active = 0  # queue invocations running right now in this process


def record(kind: str, **fields: object) -> None:
    path = os.environ.get("SAMPLE_RECORD_FILE")
    if not path:
        return
    line = json.dumps({"kind": kind, "pid": os.getpid(), "at": time.time(), **fields}) + "\n"
    with _record_lock:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


def _json(data: object, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(data), status_code=status, mimetype="application/json")


@app.route(route="echo/{name}", methods=["GET", "POST", "PUT"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    body = req.get_body()
    response = _json(
        {
            "method": req.method,
            "url": req.url,
            "headers": dict(req.headers),
            "params": dict(req.params),
            "route_params": dict(req.route_params),
            "body_length": len(body),
            "body": body.decode("utf-8", errors="replace")[:1000],
        },
        status=int(req.params.get("status", "200")),
    )
    response.headers.add("Set-Cookie", "a=1; Path=/")
    response.headers.add("Set-Cookie", "b=2; Path=/")
    response.headers["X-Custom"] = "yes"
    return response


@app.route(route="items/{id:guid?}", methods=["GET"])
def items(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"route_params": dict(req.route_params)})


@app.route(route="items/special", methods=["GET"])
def items_special(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"special": True})


@app.route(route="files/{*path}", methods=["GET"])
def files(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"path": req.route_params.get("path")})


@app.route(route="slow", methods=["GET"])
def slow(req: func.HttpRequest) -> func.HttpResponse:
    record("http", route="slow")  # so a test can tell the request is in flight
    time.sleep(int(req.params.get("ms", "200")) / 1000)
    return _json({"slept_ms": int(req.params.get("ms", "200")), "thread": threading.get_ident()})


_meetings: dict[str, threading.Barrier] = {}
_meetings_lock = threading.Lock()


@app.route(route="meet/{key}", methods=["GET"])
def meet(req: func.HttpRequest) -> func.HttpResponse:
    """200 once ``n`` requests with this key are inside the function at the same time, 409 if they are not
    all there within 10 s: requests served one after another can never all meet."""
    parties = int(req.params.get("n", "2"))
    with _meetings_lock:
        barrier = _meetings.setdefault(req.route_params["key"], threading.Barrier(parties))
    try:
        barrier.wait(timeout=10)
    except threading.BrokenBarrierError:
        return _json({"met": False}, status=409)
    return _json({"met": True})


@app.route(route="async/{n:int}", methods=["GET"])
async def async_route(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(0.01)
    return _json({"n": int(req.route_params["n"]) * 2})


@app.route(route="boom", methods=["GET"])
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("this failure must not leak to the caller")


@app.route(route="settings/{name}", methods=["GET"])
def setting(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"value": os.environ.get(req.route_params["name"])})


@app.queue_trigger(arg_name="msg", queue_name="%SAMPLE_QUEUE%", connection="AzureWebJobsStorage")
@app.queue_output(arg_name="out", queue_name="%SAMPLE_QUEUE%-out", connection="AzureWebJobsStorage")
def work(msg: func.QueueMessage, out: func.Out[str]) -> None:
    global _active
    with _active_lock:
        _active += 1
        running = _active
    try:
        body = msg.get_body().decode("utf-8")
        record(
            "queue",
            id=msg.id,
            body=body,
            dequeue_count=msg.dequeue_count,
            has_pop_receipt=bool(msg.pop_receipt),
            inserted=msg.insertion_time.isoformat() if msg.insertion_time else None,
            running=running,
        )
        if body.startswith("sleep:"):
            time.sleep(float(body.split(":", 1)[1].split("#", 1)[0]))  # "sleep:0.5#tag"
        if body.startswith("fail"):
            raise RuntimeError("failing on purpose")
        out.set(f"done:{body}")
    finally:
        with _active_lock:
            _active -= 1


@app.timer_trigger(arg_name="timer", schedule="%SAMPLE_TIMER_SCHEDULE%", run_on_startup=True)
def tick(timer: func.TimerRequest) -> None:
    record("timer", past_due=timer.past_due, now=dt.datetime.now(dt.UTC).isoformat())
    delay = float(os.environ.get("SAMPLE_TIMER_SLEEP", "0"))
    if delay:
        time.sleep(delay)


_flaky_attempts = 0


@app.timer_trigger(arg_name="timer", schedule="%SAMPLE_RETRY_SCHEDULE%", run_on_startup=False)
@app.retry(strategy="fixed_delay", max_retry_count="2", delay_interval="00:00:00.500")
def flaky_tick(timer: func.TimerRequest) -> None:
    """Fails its first two attempts, then succeeds: exercises @app.retry on a timer."""
    global _flaky_attempts
    _flaky_attempts += 1
    record("retry", attempt=_flaky_attempts)
    if _flaky_attempts <= 2:
        raise RuntimeError("failing on purpose")
