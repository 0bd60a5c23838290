"""A private, throwaway Postgres 15 for fault tests (kill it without touching the shared one).

It runs Debian's binaries (``/usr/lib/postgresql/15/bin``, as ``infra/stack.sh`` does) on a free
loopback port. ``start()`` runs ``initdb`` the first time, then ``postgres`` itself (no
``pg_ctl``: the test holds the postmaster's process and its process group); ``kill()`` SIGKILLs
the whole group, as a crash or the OOM killer would, and ``start()`` again brings the same data
folder back up through crash recovery on the same port.

Postgres refuses to run as root. Under root the processes run as the ``postgres`` user and the
data folder lives in a folder of its own under the system temp dir (pytest's ``tmp_path`` is
private to root); the log stays in ``workdir`` either way. ``fsync`` is off (a killed process
loses nothing the kernel already holds, which is all a process crash can test, and startup stays
fast); ``synchronous_commit`` stays on, as a crash test needs (see ``SERVER_OPTIONS``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg2

from tests.support.kafka_broker import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
USER = "splitlab"
DATABASE = "splitlab"
SERVER_OPTIONS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",  # TCP only: no socket path to own or to clean up
    # Off: data reaches the kernel but is never forced to disk, which only an OS crash would
    # notice. ``synchronous_commit`` must stay on: off, a commit returns before its WAL leaves
    # shared memory, and a killed server forgets transactions its clients saw committed.
    "fsync": "off",
    "shared_buffers": "32MB",
    "max_connections": "50",
    "max_wal_size": "256MB",
}


class PostgresServer:
    def __init__(self, workdir: Path) -> None:
        if not (PG_BIN / "postgres").exists():
            raise RuntimeError(f"no Postgres 15 in {PG_BIN}: run `make stack-up` first")
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "postgres.log"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._as_root = os.geteuid() == 0
        if self._as_root:
            owner = pwd.getpwnam("postgres")
            self._home = Path(tempfile.mkdtemp(prefix="splitlab-test-postgres-"))
            os.chown(self._home, owner.pw_uid, owner.pw_gid)
        else:
            self._home = workdir
        self.data_dir = self._home / "data"

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the test database (trust authentication on loopback)."""
        return f"postgresql+psycopg2://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def _popen_options(self) -> dict[str, Any]:
        # ``user=`` switches user in the child before exec: no runuser/su process in between,
        # so ``process.pid`` is the postmaster's own.
        options: dict[str, Any] = {"cwd": self._home, "start_new_session": True}
        if self._as_root:
            options.update(user="postgres", group="postgres", extra_groups=[])
        return options

    def _initdb(self) -> None:
        with self.log_path.open("ab") as log:
            result = subprocess.run(
                [str(PG_BIN / "initdb"), "-D", str(self.data_dir), "-U", USER, "--auth=trust",
                 "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions"],
                stdout=log, stderr=subprocess.STDOUT, check=False, **self._popen_options(),
            )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed; see {self.log_path}")

    def start(self, timeout: float = 30.0) -> None:
        """Start (initdb the first time); returns once a connection runs a query."""
        first = not (self.data_dir / "PG_VERSION").exists()
        if first:
            self._initdb()
        args = [str(PG_BIN / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        for name, value in SERVER_OPTIONS.items():
            args += ["-c", f"{name}={value}"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, **self._popen_options()
            )
        self._wait_ready("postgres" if first else DATABASE, timeout)
        if first:
            self._execute("postgres", f'CREATE DATABASE "{DATABASE}"')

    def _connect(self, database: str) -> Any:
        return psycopg2.connect(
            host="127.0.0.1", port=self.port, user=USER, dbname=database, connect_timeout=2
        )

    def _execute(self, database: str, sql: str) -> None:
        connection = self._connect(database)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(sql)
        finally:
            connection.close()

    def _wait_ready(self, database: str, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"test postgres exited; see {self.log_path}")
            try:
                self._execute(database, "SELECT 1")
                return
            except psycopg2.OperationalError:  # not listening yet, or still in recovery
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"test postgres did not start in {timeout}s; see {self.log_path}"
                    ) from None
                time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend at once: a crash, no shutdown checkpoint,
        clients' connections reset."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self._wait_group_gone(self.process.pid)

    def stop(self) -> None:
        """Fast shutdown (SIGINT), SIGKILL after 15 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def close(self) -> None:
        """Stop and delete the data folder (the log stays in ``workdir``)."""
        self.stop()
        if self._home != self.workdir:
            shutil.rmtree(self._home, ignore_errors=True)

    @staticmethod
    def _wait_group_gone(pgid: int, timeout: float = 10.0) -> None:
        """Until no live process of the group is left: a surviving backend would keep the shared
        memory attached and the next postmaster would refuse to start. Zombies (dead, not yet
        reaped by whoever inherited them) hold nothing and do not count."""
        deadline = time.monotonic() + timeout
        while _live_members(pgid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes of the killed postgres (group {pgid}) still run")
            time.sleep(0.02)


def _live_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are not zombies (from ``/proc/<pid>/stat``)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # exited meanwhile
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members
