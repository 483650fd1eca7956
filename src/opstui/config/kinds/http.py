"""HTTP connections and the probe kinds that read HTTP services (health)."""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import Iterable, Iterator
from typing import Annotated, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import Field, field_validator, model_validator

from opstui.config.base import Headers, Model, ProbeCommon
from opstui.config.types import HttpUrl, PositiveDuration, Text


class HttpConnection(Model):
    """An HTTP service: health endpoints, admin APIs, /metrics pages."""

    kind: Literal["http"]
    base_url: HttpUrl = Field(
        description="scheme://host:port[/prefix] every path is joined to; a password in it "
        "only as ${ENV_VAR} (then the whole URL is a Secret)"
    )
    headers: Headers = Field(
        default_factory=dict,
        description="sent with every request; credential headers only as ${ENV} or file:",
    )
    timeout: PositiveDuration = Field(
        5.0, description="per-request timeout unless a probe sets its own"
    )
    verify_tls: bool = Field(True, description="verify server certificates (off only for labs)")
    ca_file: Text | None = Field(None, description="PEM bundle to trust instead of the system's")
    max_connections: int = Field(20, ge=1, le=1000, description="pool size for this service")


StatusCode = Annotated[int, Field(ge=100, le=599)]


class HealthProbe(ProbeCommon):
    """An HTTP health endpoint; the body's own status wins over the HTTP code."""

    kind: Literal["health"]
    path: Text = Field("/health", description="joined to the connection's base_url")
    method: Literal["GET", "HEAD"] = Field("GET", description="GET or HEAD: a probe only reads")
    headers: Headers = Field(
        default_factory=dict,
        description="added to the connection's headers; credentials only as ${ENV} or file:",
    )
    expect_status: list[StatusCode] | None = Field(
        None,
        min_length=1,
        description="status codes counted as healthy when the body states no status",
    )
    value: Literal["latency_ms"] = Field(
        "latency_ms", description="the number drawn in the sparkline"
    )

    @field_validator("method", mode="before")
    @classmethod
    def _reads_only(cls, method: object) -> object:
        """A probe is polled by itself, every interval, with nobody confirming: it only reads
        (DESIGN.md section 6), so a method that changes state is refused at load."""
        if isinstance(method, str) and method.upper() in ("POST", "PUT", "PATCH", "DELETE"):
            raise ValueError(
                f"a probe only reads: {method.upper()} may change state on every poll; use GET "
                "or HEAD (a request that changes state belongs in a runbook action)"
            )
        return method


class ScrapeProbe(ProbeCommon):
    """A Prometheus text exposition (/metrics) read directly: series by name and labels."""

    kind: Literal["scrape"]
    path: Text = Field("/metrics", description="joined to the connection's base_url")
    metric: str = Field(description="metric name (a histogram's base name for a quantile)")
    labels: dict[str, str] = Field(default_factory=dict, description="label values to match")
    mode: Literal["value", "rate", "quantile"] = Field(
        "value", description="the value as is, its rate per second, or a histogram quantile"
    )
    quantile: float | None = Field(None, gt=0, lt=1, description="with mode quantile: e.g. 0.95")
    aggregate: Literal["sum", "max", "min", "avg"] = Field(
        "sum",
        description="how several matching series (or their rates) combine into one value; "
        "a quantile always sums the buckets by le",
    )

    @model_validator(mode="after")
    def _quantile_with_mode(self) -> ScrapeProbe:
        if self.mode == "quantile" and self.quantile is None:
            raise ValueError("mode quantile needs `quantile` (e.g. 0.95)")
        if self.mode != "quantile" and self.quantile is not None:
            raise ValueError("`quantile` is only used with mode quantile")
        return self


# --- staying on the connection's origin (DESIGN.md section 6, point 5) ----------------------

_DEFAULT_PORTS = {"http": 80, "https": 443}
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OVERRIDE_HEADERS = frozenset({"x-http-method-override", "x-http-method", "x-method-override"})
"""Headers by which frameworks let a request claim another method (compared lower-case)."""
_METHOD_PARAM = "_method"


class OffOrigin(ValueError):
    """A path (or a redirect) whose URL is not on the connection's scheme, host and port."""


def _shown_text(text: str, limit: int = 160) -> str:
    """`text` on one line: control characters escaped, long text cut (it is a param value)."""
    escaped = json.dumps(text, ensure_ascii=False)[1:-1]
    return escaped if len(escaped) <= limit else escaped[: limit - 1] + "…"


Origin = tuple[str, str, int | None, str]
"""scheme, host (lower-case, as the parser keeps it), port (defaults filled in), userinfo."""


@functools.lru_cache(maxsize=1024)
def _by_httpx(url: str) -> Origin:
    import httpx

    parsed = httpx.URL(url)
    scheme = parsed.scheme.lower()
    port = parsed.port or _DEFAULT_PORTS.get(scheme)
    return scheme, parsed.raw_host.decode("ascii").lower(), port, parsed.userinfo.decode()


@functools.lru_cache(maxsize=1024)
def _by_urllib(url: str) -> Origin:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    port = parts.port or _DEFAULT_PORTS.get(scheme)
    host = parts.hostname or ""
    if not host.isascii():  # urllib keeps an IDN as written; the others send its A-label
        import idna

        host = idna.encode(host, uts46=True).decode("ascii")
    return scheme, host.lower(), port, userinfo


@functools.lru_cache(maxsize=1024)
def _by_yarl(url: str) -> Origin:
    """As aiohttp will see it: the aiohttp transport hands it `str(request.url)`."""
    import yarl

    parsed = yarl.URL(url)
    userinfo = parsed.raw_user or ""
    if parsed.raw_password is not None:
        userinfo += ":" + parsed.raw_password
    return parsed.scheme.lower(), (parsed.raw_host or "").lower(), parsed.port, userinfo


_PARSERS = (_by_httpx, _by_urllib, _by_yarl)
"""Each cached: a base URL is read again for every path joined to it."""


def origin_text(url: str) -> str:
    """`scheme://host:port` of a URL, without userinfo: safe to show."""
    try:
        scheme, host, port, _ = _by_httpx(url)
    except Exception:
        return "(not a URL)"
    shown_host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown_host}:{port}" if port is not None else f"{scheme}://{shown_host}"


def same_origin(base: str, url: str) -> bool:
    """True when every parser on the request path (httpx, urllib, yarl under aiohttp) reads the
    same scheme, host, port and userinfo in `url` as in `base`; a URL one of them rejects is
    not on the origin."""
    for parse in _PARSERS:
        try:
            wanted, got = parse(base), parse(url)
        except Exception:
            return False
        if not wanted[1] or got != wanted:
            return False
    return True


def _unquote_all(text: str) -> str:
    """Percent-decoding until nothing changes (a double-encoded `%252e` is a dot to some)."""
    for _ in range(4):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def _without_dot_segments(path: str) -> str:
    """RFC 3986 remove_dot_segments, after decoding what a server may decode (`%2e`, `%2f`,
    backslashes), so `..` hidden in any of them counts."""
    segments: list[str] = []
    for segment in _unquote_all(path).replace("\\", "/").split("/"):
        if segment == "..":
            if len(segments) > 1:
                segments.pop()
        elif segment != ".":
            segments.append(segment)
    return "/".join(segments)


@functools.lru_cache(maxsize=4096)
def join_on_origin(base_url: str, path: str) -> str:
    """The URL a request for `path` goes to, or OffOrigin (one line) when it would leave the
    base URL's scheme, host and port, carry its own userinfo, or climb above the base URL's
    path prefix with `..`.

    A plain path is put under the prefix (`/api` + `/health` = `/api/health`). A path that
    names a scheme or a host is resolved as a URL reference and must come back to the same
    origin. The result is then read by every parser on the way (httpx, urllib, yarl) and
    compared: normalised and compared, never pattern-matched. Cached: validate, prepare and
    the client each ask for the same paths (a refusal is not cached; it raises each time).
    """
    import httpx

    shown = _shown_text(path)
    try:
        base = httpx.URL(base_url)
        parts = urlsplit(path)
        reference = httpx.URL(path)
    except Exception as exc:
        reason = _shown_text(str(exc), 80)
        raise OffOrigin(f"{shown!r} is not a valid URL path ({reason})") from None
    by_urllib = (bool(parts.scheme), bool(parts.netloc))
    by_httpx = (bool(reference.scheme), bool(reference.host or reference.port))
    if by_urllib != by_httpx:
        raise OffOrigin(f"{shown!r} is read differently by URL parsers; refused")
    if parts.scheme or parts.netloc or path.startswith("//"):
        if "@" in parts.netloc or reference.userinfo:
            raise OffOrigin(f"{shown!r} carries its own userinfo; refused")
        if not (parts.netloc or reference.host):
            raise OffOrigin(f"{shown!r} names a scheme but no host: not a path")
        try:
            joined = str(base.join(reference))
        except Exception as exc:
            raise OffOrigin(f"{shown!r} is not a valid URL ({_shown_text(str(exc), 80)})") from None
    else:
        prefix = base.raw_path.split(b"?", 1)[0]
        if not prefix.endswith(b"/"):
            prefix += b"/"
        joined = str(base.copy_with(raw_path=prefix + reference.raw_path.lstrip(b"/")))
    if not same_origin(base_url, joined):
        raise OffOrigin(
            f"{shown!r} goes to {origin_text(joined)}, not the connection's origin "
            f"{origin_text(base_url)}; "
            "refused"
        )
    prefix_text = base.raw_path.decode("ascii").split("?", 1)[0].rstrip("/")
    if prefix_text:
        where = _without_dot_segments(urlsplit(joined).path)
        if not (where == prefix_text or where.startswith(prefix_text + "/")):
            raise OffOrigin(f"{shown!r} climbs out of the base URL's path {prefix_text}; refused")
    return joined


def check_host_header(base_url: str, headers: Iterable[tuple[str, str | None]]) -> None:
    """OffOrigin when a `Host` header names another host or port than the base URL: behind a
    shared proxy it routes the request, and its credentials, to another service. A secret
    value (None) cannot be checked, so it is refused too."""
    for name, value in headers:
        if name.strip().lower() != "host":
            continue
        if value is None:
            raise OffOrigin("a Host header that is a secret cannot be checked; refused")
        scheme = urlsplit(base_url).scheme or "http"
        if not same_origin(_without_userinfo(base_url), f"{scheme}://{value.strip()}/"):
            raise OffOrigin(
                f"Host: {_shown_text(value, 80)} is not the connection's origin "
                f"{origin_text(base_url)}; refused"
            )


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


# --- method overrides (DESIGN.md section 6, point 1) ----------------------------------------


def _override_word(value: str) -> str | None:
    """The unsafe method a header or `_method` value names (upper-case), or None when every
    method it names is GET, HEAD or OPTIONS. An empty or odd value counts as unsafe."""
    words = [w for w in re.split(r"[\s,]+", value.strip().upper()) if w]
    for word in words or ["(EMPTY)"]:
        if word not in _SAFE_METHODS:
            return word
    return None


def _form_pairs(text: str) -> list[tuple[str, str]]:
    return parse_qsl(text, keep_blank_values=True)


def _json_pairs(value: object) -> Iterator[tuple[str, str]]:
    """Every key/value of a JSON value, at any depth (a nested `_method` counts too)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list):
                yield str(key), ""
                yield from _json_pairs(item)
            else:
                yield str(key), "" if item is None else str(item)
    elif isinstance(value, list):
        for item in value:
            yield from _json_pairs(item)


def _param_finding(where: str, pairs: Iterable[tuple[str, str]], text: str) -> str | None:
    """A reason when `pairs` hold a `_method` naming an unsafe method, or when `text` mentions
    `_method` in a form no parser here reads (then it cannot be proved safe)."""
    seen = False
    for name, value in pairs:
        if _unquote_all(name).strip().lower().startswith(_METHOD_PARAM):
            seen = True
            word = _override_word(_unquote_all(value))
            if word is not None:
                return f"_method={word} in the {where} makes it a {word}"
    if not seen and _METHOD_PARAM in _unquote_all(text).lower():
        return f"the {where} mentions _method in a form opstui cannot read: assumed a mutation"
    return None


def method_override(
    headers: Iterable[tuple[str, str | None]], path: str, body: bytes | None = None
) -> str | None:
    """Why a request claims a method other than GET/HEAD/OPTIONS through an override header
    (`X-HTTP-Method-Override` and kin, any case) or a `_method` parameter (query string, JSON
    or form body), else None. A header value that is a secret is passed as None: unprovable.
    """
    for name, value in headers:
        if name.strip().lower() in OVERRIDE_HEADERS:
            if value is None:
                return f"{name} (a secret) may name any method: assumed a mutation"
            word = _override_word(value)
            if word is not None:
                return f"{name}: {_shown_text(value, 40)} makes it a {word}"
    query = urlsplit(path).query if "?" in path else ""
    found = _param_finding("path", _form_pairs(query), path)
    if found is not None:
        return found
    if body:
        text = body.decode("utf-8", "replace")
        pairs = list(_form_pairs(text))
        with contextlib.suppress(ValueError):
            pairs += list(_json_pairs(json.loads(text)))
        return _param_finding("body", pairs, text)
    return None
