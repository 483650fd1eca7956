"""The Redactor on its own: every form a secret comes back in, and what it must not hide.

No server here: these pin the encodings the echo scenario relies on, one id per form, and
the log sink (a traceback quoting a DSN goes through the same redactor).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import pytest

from opstui.config.models import Config
from opstui.redaction import RedactingFormatter, Redactor, redactor_for

PASSWORD = "p@ss:w/rd \"q\" é"
TOKEN = "tok-0123456789"


@pytest.fixture
def config(monkeypatch: pytest.MonkeyPatch) -> Iterator[Config]:
    monkeypatch.setenv("RED_PW", quote(PASSWORD, safe=""))
    monkeypatch.setenv("RED_TOKEN", TOKEN)
    monkeypatch.setenv("RED_HOST", "db.internal")
    monkeypatch.setenv("RED_BASIC", base64.b64encode(b"svc:basicpw-77").decode())
    yield Config.model_validate(
        {
            "connections": {
                "app": {
                    "kind": "http",
                    "base_url": "http://ops:${RED_PW}@127.0.0.1:1",
                    "headers": {
                        "Authorization": "Bearer ${RED_TOKEN}",
                        "X-Basic": "Basic ${RED_BASIC}",
                    },
                },
                "cache": {"kind": "redis", "url": "redis://${RED_HOST}:6379/0"},
            },
        }
    )


FORMS = {
    "raw": PASSWORD,
    "url-quoted": quote(PASSWORD, safe=""),
    "url-quoted-lower-hex": quote(PASSWORD, safe="").lower(),
    "quote-plus": quote_plus(PASSWORD),
    "json-escaped": json.dumps(PASSWORD)[1:-1],
    "json-escaped-utf8": json.dumps(PASSWORD, ensure_ascii=False)[1:-1],
    "basic-auth-base64": base64.b64encode(f"ops:{PASSWORD}".encode()).decode(),
    "bare-base64": base64.b64encode(PASSWORD.encode()).decode(),
    "bearer-token-alone": TOKEN,
    "basic-header-decoded": "svc:basicpw-77",
    "basic-header-password": "basicpw-77",
}


@pytest.mark.parametrize("form", list(FORMS.values()), ids=list(FORMS))
def test_every_form_is_hidden(config: Config, form: str) -> None:
    redactor = redactor_for(config)
    text = f"server said: <{form}> and more"
    assert redactor.scrub(text) == "server said: <***> and more"


def test_what_is_not_a_secret_stays(config: Config) -> None:
    redactor = redactor_for(config)
    text = "redis://db.internal:6379/0 user ops, Bearer, 127.0.0.1"
    assert redactor.scrub(text) == text  # a host from ${ENV} in a URL without password
    assert redactor_for(config) is redactor  # built once per config


def test_log_file_lines_and_tracebacks_are_scrubbed(config: Config) -> None:
    handler_output: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            handler_output.append(self.format(record))

    handler = Collect()
    handler.setFormatter(RedactingFormatter(redactor_for(config), "%(message)s"))
    log = logging.getLogger("opstui.test-redaction")
    log.addHandler(handler)
    try:
        try:
            raise RuntimeError(f"connect to http://ops:{quote(PASSWORD, safe='')}@host failed")
        except RuntimeError:
            log.exception("poll failed with token %s", TOKEN)
    finally:
        log.removeHandler(handler)
    [line] = handler_output
    assert "Traceback" in line and "RuntimeError" in line
    assert PASSWORD not in line and quote(PASSWORD, safe="") not in line and TOKEN not in line


def test_short_values_are_not_redacted() -> None:
    assert Redactor(["ab"]).scrub("ab cd") == "ab cd"
    assert not Redactor()
