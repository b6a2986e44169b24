"""An in-process server of the Lambda Invoke API, so moto's Step Functions interpreter runs our handlers.

``POST /2015-03-31/functions/{name}/invocations`` loads ``functions/<dir>/app.py`` (once) and calls its handler.
A raised exception becomes ``X-Amz-Function-Error: Unhandled`` with ``{errorType, errorMessage}``: the state
machine sees ``errorType`` (the exception's class name) as the error name, exactly as on AWS.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any
from urllib.parse import unquote

from livefire_local.template import ACCOUNT, LocalFunction

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    timeout_s: int
    region: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class Invocation:
    function: str
    started: float
    ended: float
    error_type: str | None


@dataclass
class _InjectedFailure:
    error_type: str
    message: str
    remaining: int
    skip: int
    after: bool


class InjectedFunctionError(Exception):
    """Raised in place of a handler's own result by ``LocalLambdaServer.inject_failure``."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def load_handler(function: LocalFunction) -> Handler:
    module_name, _, attribute = function.handler.rpartition(".")
    path = function.code_dir / f"{module_name.replace('.', '/')}.py"
    spec = importlib.util.spec_from_file_location(f"livefire_function_{function.logical_id}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"handler module {path} not found")
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler: Handler = getattr(module, attribute)
    return handler


class LocalLambdaServer:
    """Serves every function of the template; handlers are imported lazily, once, like a warm container."""

    def __init__(self, functions: list[LocalFunction], region: str,
                 on_invoke: Callable[[Invocation, Any], None] | None = None) -> None:
        self._functions = {f.name: f for f in functions}
        self._handlers: dict[str, Handler] = {}
        self._load_lock = threading.Lock()
        self._region = region
        self._on_invoke = on_invoke
        self._server: ThreadingHTTPServer | None = None
        self.invocations: list[Invocation] = []
        self._failures: dict[str, list[_InjectedFailure]] = {}
        self._in_flight = 0
        self._idle = threading.Condition()

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> str:
        owner = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                owner._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="local-lambda", daemon=True).start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def handler_for(self, name: str) -> tuple[LocalFunction, Handler]:
        function = self._functions[name]
        with self._load_lock:
            if name not in self._handlers:
                self._handlers[name] = load_handler(function)
        return function, self._handlers[name]

    def inject_failure(self, function_name: str, error_type: str = "InjectedFailure", times: int = 1, *,
                       skip: int = 0, after: bool = False, message: str = "") -> None:
        """Test hook: let ``skip`` invocations of the function through, then fail the next ``times`` with
        ``error_type``. ``after=True`` runs the handler first and then fails: a function that did its work but
        whose answer never arrived (a timeout, a crashed runtime)."""
        if function_name not in self._functions:
            raise KeyError(f"no function {function_name}")
        text = message or f"injected {error_type}"
        with self._load_lock:
            self._failures.setdefault(function_name, []).append(
                _InjectedFailure(error_type, text, times, skip, after))

    def _next_failure(self, name: str) -> _InjectedFailure | None:
        with self._load_lock:
            for rule in self._failures.get(name, []):
                if rule.remaining <= 0:
                    continue
                if rule.skip > 0:
                    rule.skip -= 1
                    continue
                rule.remaining -= 1
                return rule
        return None

    def pending_failures(self) -> int:
        """How many injected failures have not fired yet."""
        with self._load_lock:
            return sum(rule.remaining for rules in self._failures.values() for rule in rules)

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait (at most ``timeout_s``) until no invocation is in flight; False if one still is."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout_s)

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        with self._idle:
            self._in_flight += 1
        try:
            self._serve_one(request)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _serve_one(self, request: BaseHTTPRequestHandler) -> None:
        request_id = str(uuid.uuid4())
        parts = request.path.split("/")
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        if len(parts) < 5 or parts[1] != "2015-03-31" or parts[2] != "functions":
            self._reply(request, 404, request_id, {"message": f"unknown path {request.path}"})
            return
        name = unquote(parts[3]).rsplit(":function:", 1)[-1].split(":")[0]
        if name not in self._functions:
            self._reply(request, 404, request_id, {
                "Type": "User", "message": f"Function not found: {name}"},
                extra={"x-amzn-ErrorType": "ResourceNotFoundException"})
            return
        event = json.loads(body or b"{}")
        started = time.monotonic()
        error_type: str | None = None
        try:
            function, handler = self.handler_for(name)
            context = LambdaContext(function.name, function.memory_mb, function.timeout, self._region,
                                    aws_request_id=request_id)
            failure = self._next_failure(name)
            if failure is not None and not failure.after:
                raise InjectedFunctionError(failure.error_type, failure.message)
            result: Any = handler(event, context)
            if failure is not None:
                raise InjectedFunctionError(failure.error_type, failure.message)
            payload: Any = result
        except Exception as exc:  # the Lambda runtime turns any exception into a function error
            error_type = exc.error_type if isinstance(exc, InjectedFunctionError) else type(exc).__name__
            payload = {"errorType": error_type, "errorMessage": str(exc),
                       "stackTrace": traceback.format_exception(exc)[-3:]}
        invocation = Invocation(name, started, time.monotonic(), error_type)
        self.invocations.append(invocation)
        if self._on_invoke is not None:
            self._on_invoke(invocation, payload)
        extra = {"X-Amz-Function-Error": "Unhandled"} if error_type else {}
        self._reply(request, 200, request_id, payload, extra={**extra, "X-Amz-Executed-Version": "$LATEST"})

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, request_id: str, payload: Any,
               extra: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.send_header("x-amzn-RequestId", request_id)
        for key, value in (extra or {}).items():
            request.send_header(key, value)
        request.end_headers()
        request.wfile.write(data)
