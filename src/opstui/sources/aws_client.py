"""One aioboto3 ECS client per `aws` connection, open for the engine's life (DESIGN.md s. 7).

Opening a botocore client costs tens of milliseconds (endpoint and model loading, the
credential chain), so it is opened once, on first use, inside an AsyncExitStack that
`aclose()` exits. botocore's own retries are off (`max_attempts: 1`): the engine retries with
backoff, and a retry hidden inside one poll would blow the poll's deadline.

describe_services takes up to 10 services. Probes register the services they watch; the first
probe of a cycle fetches every service wanted on its cluster (in calls of 10) and the others
of that cycle share the result: a fetch is reused for BATCH_WINDOW seconds after it finished,
and probes that ask while it is in flight wait for it instead of calling again. The engine
spreads first polls 5 ms apart, so a window of a few ms would not coalesce them; half a second
does, and a panel's reading is then at most that much older than its poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opstui.config.kinds.aws import AwsConnection
from opstui.config.types import format_duration, reveal
from opstui.sources.base import Client, ProbeError
from opstui.sources.errors import exception_chain, one_line
from opstui.sources.registry import ClientPool

BATCH_WINDOW = 0.5
"""Seconds a finished describe_services fetch serves the other probes of its cluster."""
MAX_SERVICES_PER_CALL = 10
"""describe_services' limit."""

HINT_NAMES = "check the cluster and service names (and the region)"
HINT_CREDENTIALS = (
    "give the connection a profile or access_key_id/secret_access_key, or set AWS_* env vars"
)
_ACCESS_DENIED = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException"}
)
_THROTTLED = frozenset(
    {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"}
)
_BAD_SIGNATURE = frozenset(
    {
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "RequestExpired",
    }
)

_XML_CODE = re.compile(r"<Code>\s*([A-Za-z.]+)\s*</Code>")

ServiceOutcome = Mapping[str, Any] | ProbeError
"""One service's description as ECS returned it, or why it could not be had."""


@dataclass
class _Fetch:
    """One describe_services round for a cluster, shared by the probes that ask during it."""

    services: frozenset[str]
    task: asyncio.Task[dict[str, ServiceOutcome]]
    finished_at: float | None = None

    def serves(self, service: str, now: float, window: float) -> bool:
        if service not in self.services:
            return False
        if not self.task.done() or self.finished_at is None:  # in flight, or just finished
            return True
        return now - self.finished_at < window


@dataclass
class _Wanted:
    by_cluster: dict[str, set[str]] = field(default_factory=dict)

    def add(self, cluster: str, service: str) -> None:
        self.by_cluster.setdefault(cluster, set()).add(service)

    def of(self, cluster: str) -> frozenset[str]:
        return frozenset(self.by_cluster.get(cluster, ()))


class AwsClient(Client):
    """The shared ECS client of one aws connection, opened lazily inside the running loop."""

    def __init__(self, connection: AwsConnection, *, batch_window: float = BATCH_WINDOW) -> None:
        self.connection = connection
        self.batch_window = batch_window
        self.sessions_opened = 0
        """How many times a session + client was opened (1 for the engine's whole life)."""
        self._stack: contextlib.AsyncExitStack | None = None
        self._ecs: Any = None
        self._opening: asyncio.Future[contextlib.AbstractAsyncContextManager[Any]] | None = None
        """The thread building the client's context manager, kept across a cancelled first
        call (a poll timeout) so the next call takes it over instead of dropping it unused."""
        self._open_lock = asyncio.Lock()
        self._wanted = _Wanted()
        self._fetches: dict[str, _Fetch] = {}
        self._tasks: set[asyncio.Task[dict[str, ServiceOutcome]]] = set()

    @property
    def credentials_source(self) -> str:
        """How credentials are found, in words (never the keys themselves)."""
        if self.connection.access_key_id is not None:
            return "keys from the config"
        if self.connection.profile:
            return f"profile {self.connection.profile}"
        return "default chain"

    async def ecs(self) -> Any:
        """The open aiobotocore ECS client; opened on first call, then reused."""
        if self._ecs is not None:
            return self._ecs
        async with self._open_lock:
            if self._ecs is None:
                stack = contextlib.AsyncExitStack()
                try:
                    # botocore takes a quarter second to import: off the loop, so the other
                    # probes (and the TUI) keep going meanwhile.
                    if self._opening is None:
                        self._opening = asyncio.ensure_future(
                            asyncio.to_thread(_open_ecs, self.connection)
                        )
                    opening = self._opening
                    manager = await asyncio.shield(opening)
                    if self._opening is opening:
                        self._opening = None
                    client = await stack.enter_async_context(manager)
                except BaseException:
                    await stack.aclose()
                    raise
                self._stack, self._ecs = stack, client
                self.sessions_opened += 1
        return self._ecs

    async def call(
        self, operation: str, *, time_limit: float | None = None, **params: Any
    ) -> dict[str, Any]:
        """One ECS API call (`describe_services`, ...) under a deadline; ProbeError on failure."""
        seconds = self.connection.timeout if time_limit is None else time_limit
        try:
            async with asyncio.timeout(seconds):
                client = await self.ecs()
                response: dict[str, Any] = await getattr(client, operation)(**params)
        except ProbeError:
            raise
        except Exception as exc:  # every failure becomes one short reason
            raise aws_error(exc, seconds) from exc
        return response

    def want(self, cluster: str, service: str) -> None:
        """Register a watched service, so its cluster's fetches include it."""
        self._wanted.add(cluster, service)

    async def describe_service(
        self, cluster: str, service: str, *, time_limit: float | None = None
    ) -> Mapping[str, Any]:
        """The service's description, fetched together with every other service wanted on
        `cluster`. Raises ProbeError ("service not found", "refused", ...)."""
        self.want(cluster, service)
        fetch = self._fetches.get(cluster)
        if fetch is None or not fetch.serves(service, time.monotonic(), self.batch_window):
            fetch = self._start_fetch(cluster, time_limit)
        outcomes = await asyncio.shield(fetch.task)
        outcome = outcomes.get(service)
        if outcome is None:
            raise ProbeError("service not found", hint=HINT_NAMES)
        if isinstance(outcome, ProbeError):
            # a fresh exception per probe: one shared instance would chain their tracebacks
            raise ProbeError(outcome.reason, hint=outcome.hint, detail=outcome.detail)
        return outcome

    def _start_fetch(self, cluster: str, time_limit: float | None) -> _Fetch:
        services = self._wanted.of(cluster)
        task = asyncio.get_running_loop().create_task(
            self._fetch(cluster, sorted(services), time_limit)
        )
        fetch = _Fetch(services, task)

        def finished(done: asyncio.Task[dict[str, ServiceOutcome]]) -> None:
            fetch.finished_at = time.monotonic()
            self._tasks.discard(done)

        self._tasks.add(task)
        task.add_done_callback(finished)
        self._fetches[cluster] = fetch
        return fetch

    async def _fetch(
        self, cluster: str, services: list[str], time_limit: float | None
    ) -> dict[str, ServiceOutcome]:
        chunks = [
            services[i : i + MAX_SERVICES_PER_CALL]
            for i in range(0, len(services), MAX_SERVICES_PER_CALL)
        ]
        parts = await asyncio.gather(
            *(self._fetch_chunk(cluster, chunk, time_limit) for chunk in chunks)
        )
        merged: dict[str, ServiceOutcome] = {}
        for part in parts:
            merged.update(part)
        return merged

    async def _fetch_chunk(
        self, cluster: str, services: list[str], time_limit: float | None
    ) -> dict[str, ServiceOutcome]:
        try:
            response = await self.call(
                "describe_services", cluster=cluster, services=services, time_limit=time_limit
            )
        except ProbeError as exc:
            return dict.fromkeys(services, exc)
        return match_services(services, response)

    async def aclose(self) -> None:
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        self._fetches.clear()
        stack, self._stack, self._ecs = self._stack, None, None
        if stack is not None:
            await stack.aclose()
        opening, self._opening = self._opening, None
        if opening is not None:
            # A client built for a call that was cancelled: open and close it, so its
            # creation coroutine is not left un-awaited (and nothing stays open).
            with contextlib.suppress(BaseException):
                async with asyncio.timeout(self.connection.timeout):
                    async with await opening:
                        pass


def _open_ecs(connection: AwsConnection) -> contextlib.AbstractAsyncContextManager[Any]:
    """aioboto3's client context manager for ECS; secrets are revealed here and only here."""
    import aioboto3
    from botocore.config import Config  # type: ignore[import-untyped]

    keys: dict[str, str] = {}
    if connection.access_key_id is not None and connection.secret_access_key is not None:
        keys["aws_access_key_id"] = reveal(connection.access_key_id)
        keys["aws_secret_access_key"] = reveal(connection.secret_access_key)
        if connection.session_token is not None:
            keys["aws_session_token"] = reveal(connection.session_token)
    session = aioboto3.Session(
        region_name=connection.region,
        profile_name=connection.profile if not keys else None,
        **keys,
    )
    config = Config(
        connect_timeout=connection.timeout,
        read_timeout=connection.timeout,
        retries={"max_attempts": 1, "mode": "standard"},
        user_agent_extra="opstui",
    )
    endpoint = reveal(connection.endpoint_url) if connection.endpoint_url else None
    manager: contextlib.AbstractAsyncContextManager[Any] = session.client(
        "ecs", endpoint_url=endpoint, config=config
    )
    return manager


def get_ecs_client(pool: ClientPool, name: str, connection: AwsConnection) -> AwsClient:
    """The pool's client for aws connection `name`, created on first use."""
    client = pool.get(name, lambda: AwsClient(connection))
    if not isinstance(client, AwsClient):
        raise TypeError(f"connection {name!r} already has a {type(client).__name__}")
    return client


def match_services(requested: list[str], response: Mapping[str, Any]) -> dict[str, ServiceOutcome]:
    """Pair each requested name (or ARN) with its description or its `failures` entry."""
    found: dict[str, Mapping[str, Any]] = {}
    for service in response.get("services") or ():
        for key in (service.get("serviceName"), service.get("serviceArn")):
            if key:
                found[key] = service
    failures: dict[str, str] = {}
    for failure in response.get("failures") or ():
        arn = str(failure.get("arn") or "")
        reason = str(failure.get("reason") or "unknown")
        failures[arn] = reason
        failures[arn.rsplit("/", 1)[-1]] = reason
    outcomes: dict[str, ServiceOutcome] = {}
    for name in requested:
        if name in found:
            outcomes[name] = found[name]
            continue
        reason = failures.get(name) or failures.get(name.rsplit("/", 1)[-1]) or "MISSING"
        if reason == "MISSING":
            outcomes[name] = ProbeError("service not found", hint=HINT_NAMES)
        else:
            outcomes[name] = ProbeError(f"describe failed: {reason}", hint=HINT_NAMES)
    return outcomes


# --- failures -------------------------------------------------------------------------------


def aws_error(exc: BaseException, timeout: float) -> ProbeError:
    """A short reason for a failed AWS call, judged from the innermost cause outwards."""
    from botocore import exceptions as bx  # type: ignore[import-untyped]

    chain = list(exception_chain(exc))
    detail = one_line(str(chain[-1]) or type(chain[-1]).__name__)
    for cause in chain:
        if isinstance(cause, bx.ClientError):
            return _client_error(cause, detail)
        if isinstance(cause, bx.NoCredentialsError | bx.PartialCredentialsError):
            return ProbeError("no credentials", hint=HINT_CREDENTIALS, detail=detail)
        if isinstance(cause, bx.ProfileNotFound):
            return ProbeError(
                "profile not found", hint="check `profile` against ~/.aws/config", detail=detail
            )
    for cause in reversed(chain):
        if isinstance(cause, ConnectionRefusedError):
            return ProbeError("refused", detail=detail)
        if isinstance(cause, TimeoutError | bx.ConnectTimeoutError | bx.ReadTimeoutError):
            return ProbeError(f"timeout after {format_duration(timeout)}", detail=detail)
        if isinstance(cause, ConnectionResetError | bx.ConnectionClosedError):
            return ProbeError("connection reset", detail=detail)
    for cause in chain:
        if "refused" in str(cause).lower():
            return ProbeError("refused", detail=detail)
        if isinstance(cause, bx.EndpointConnectionError):
            return ProbeError("cannot connect", hint="check region and endpoint_url", detail=detail)
        if isinstance(cause, bx.NoRegionError):
            return ProbeError("no region", hint="set the connection's region", detail=detail)
    return ProbeError(f"AWS call failed: {type(exc).__name__}", detail=detail)


def _client_error(exc: Any, detail: str) -> ProbeError:
    error = (getattr(exc, "response", None) or {}).get("Error") or {}
    code = str(error.get("Code") or "ClientError")
    if code.isdigit():  # an XML error body where JSON was expected (proxies, moto's IAM)
        found = _XML_CODE.search(str(error.get("Message") or ""))
        code = found.group(1) if found else f"HTTP {code}"
    if code in _ACCESS_DENIED:
        return ProbeError(
            "AccessDenied",
            hint="the credentials need ecs:DescribeServices, ecs:ListTasks, ecs:DescribeTasks",
            detail=detail,
        )
    if code in _THROTTLED:
        return ProbeError("ThrottlingException", hint="raise the probe's interval", detail=detail)
    if code in _BAD_SIGNATURE:
        return ProbeError(
            "InvalidSignature/expired token",
            hint="check the credentials and the machine's clock",
            detail=detail,
        )
    if code == "ClusterNotFoundException":
        return ProbeError(code, hint=HINT_NAMES, detail=detail)
    if code == "ServiceNotFoundException":
        return ProbeError("service not found", hint=HINT_NAMES, detail=detail)
    return ProbeError(code, detail=detail)



