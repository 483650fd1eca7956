"""A throwaway PostgreSQL server (Debian's binaries) on a random loopback port.

initdb runs once per test session into a template directory; each server copies it, which
keeps start-up to about a second. PostgreSQL refuses to run as root, so under root initdb and
postgres run as the `postgres` system user through `setpriv` (which execs, so the postmaster
stays the process-group leader that stop/hang/unhang signal, backends included). The data
directory lives under /tmp in a directory that user owns: pytest's own tmp dirs are 0700 root.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.servers.process import ServerProcess, port_open
from tests.support import REQUIRE_SERVERS

_TEMPLATE: Path | None = None


def postgres_bin(name: str) -> str:
    """Path of a PostgreSQL server binary; skip (locally) or fail (CI) when absent."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if found:
        return found[0]
    path = shutil.which(name)
    if path is None:
        message = f"{name} (PostgreSQL server) is not installed"
        if REQUIRE_SERVERS:
            pytest.fail(f"{message} (OPSTUI_REQUIRE_SERVERS=1)")
        pytest.skip(message)
    return path


def _run_as() -> pwd.struct_passwd | None:
    """The user postgres runs as: None when we are not root, else `postgres` (or nobody)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and no postgres/nobody user to run PostgreSQL as")


def _as_user(argv: Sequence[str]) -> list[str]:
    user = _run_as()
    if user is None:
        return list(argv)
    return [
        "setpriv",
        f"--reuid={user.pw_uid}",
        f"--regid={user.pw_gid}",
        "--clear-groups",
        "--",
        *argv,
    ]


def _owned_tmpdir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    user = _run_as()
    if user is not None:
        os.chown(path, user.pw_uid, user.pw_gid)
    path.chmod(0o700)
    return path


def _template() -> Path:
    """An initialised cluster (trust auth, superuser `postgres`), made once per session."""
    global _TEMPLATE
    if _TEMPLATE is None:
        initdb = postgres_bin("initdb")
        root = _owned_tmpdir("opstui-pgtpl-")
        data = root / "data"
        result = subprocess.run(
            _as_user(
                [
                    initdb,
                    "-D",
                    str(data),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                    "--no-instructions",
                ]
            ),
            capture_output=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed: {result.stderr.decode(errors='replace')[-800:]}")
        atexit.register(shutil.rmtree, root, True)
        _TEMPLATE = data
    return _TEMPLATE


class PostgresServer(ServerProcess):
    """postgres on 127.0.0.1:<port>, socket and data in a private dir; `close()` removes them.

    `settings` become `-c name=value` flags; `hba` replaces pg_hba.conf (to require passwords).
    """

    name = "postgres"

    def __init__(
        self,
        workdir: Path,
        *,
        settings: dict[str, str] | None = None,
        hba: str | None = None,
    ) -> None:
        super().__init__(workdir)
        self.binary = postgres_bin("postgres")
        self.isready = postgres_bin("pg_isready")
        self.settings = settings or {}
        self.root = _owned_tmpdir("opstui-pg-")
        self.data = self.root / "data"
        self.socket_dir = self.root
        subprocess.run(["cp", "-a", str(_template()), str(self.data)], check=True, timeout=60)
        if hba is not None:
            (self.data / "pg_hba.conf").write_text(hba)

    def argv(self) -> Sequence[str]:
        flags = {
            "listen_addresses": "127.0.0.1",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "16MB",
            "max_connections": "40",
            **self.settings,
        }
        settings = [arg for key, value in flags.items() for arg in ("-c", f"{key}={value}")]
        return _as_user(
            [
                self.binary,
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-k",
                str(self.socket_dir),
                *settings,
            ]
        )

    def ready(self) -> bool:
        """Accepting queries, not merely the port open (start-up answers 57P03)."""
        if not port_open(self.port):
            return False
        result = subprocess.run(
            [
                self.isready,
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-t",
                "1",
            ],
            capture_output=True,
            timeout=10,
            check=False,
        )
        return result.returncode == 0

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster: sessions end at once), then the base's."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            self.unhang()
            _signal_pid(proc.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        super().stop()

    def hang(self) -> None:
        """SIGSTOP the postmaster, then every backend and helper it forked.

        Each postmaster child calls setsid(), so the base class's killpg would stop only the
        postmaster and existing sessions would go on answering.
        """
        assert self.proc is not None
        _signal_pid(self.proc.pid, signal.SIGSTOP)
        for pid in _children(self.proc.pid):
            _signal_pid(pid, signal.SIGSTOP)

    def unhang(self) -> None:
        assert self.proc is not None
        for pid in _children(self.proc.pid):
            _signal_pid(pid, signal.SIGCONT)
        _signal_pid(self.proc.pid, signal.SIGCONT)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def dsn_for(self, user: str = "postgres", database: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    @property
    def dsn(self) -> str:
        return self.dsn_for()


def _signal_pid(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _children(parent: int) -> list[int]:
    """Pids whose parent is `parent`, from /proc (the postmaster's backends and workers)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == parent:
            found.append(int(entry.name))
    return found
