"""Every file in broken/ fails with exactly the file, line and key path its first line names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from opstui.actions.static import load_checked
from opstui.config.loader import ConfigError

BROKEN = Path(__file__).parent / "broken"
FILES = sorted(BROKEN.glob("*.yaml"))
_EXPECT = re.compile(rb"^# expect: (\d+): (\S+)$")
_SAYS = re.compile(rb"^# says: (.+)$")
_NOISE = ("Traceback", "pydantic", "errors.pydantic.dev", "Input should", "For further info")


def _expectation(path: Path) -> tuple[int, str, str]:
    first, second = path.read_bytes().split(b"\n")[:2]
    expect, says = _EXPECT.match(first), _SAYS.match(second)
    assert expect and says, f"{path.name}: needs '# expect: LINE: key.path' and '# says: ...'"
    key = expect.group(2).decode()
    return int(expect.group(1)), "" if key == "-" else key, says.group(1).decode()


def test_corpus_is_complete() -> None:
    assert len(FILES) >= 24


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_broken_config(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPSTUI_TEST_SURELY_UNSET", raising=False)
    line, key_path, says = _expectation(path)
    with pytest.raises(ConfigError) as info:
        load_checked(path)
    error = info.value
    text = str(error)
    assert (error.file, error.line, error.key_path) == (str(path), line, key_path), text
    assert says in error.message
    prefix = f"{path}:{line}: {key_path}: " if key_path else f"{path}:{line}: "
    assert text == prefix + error.message
    for shown in error.lines():
        assert "\n" not in shown and "\r" not in shown
        assert not any(noise in shown for noise in _NOISE), shown
    # No chained pydantic error (with its input values) rides along with the ConfigError.
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
