"""Azurite, started and stopped by the tooling: the local Azure Storage."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from shared.adapters.local.paths import PROJECT_ROOT
from shared.config import azurite_connection_string


class Azurite:
    """An Azurite blob service on loopback; `in_memory` for tests, a folder under MLOPS_HOME otherwise."""

    def __init__(self, home: Path, port: int = 10000, in_memory: bool = False) -> None:
        self.home = home
        self.port = port
        self.in_memory = in_memory
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def connection_string(self) -> str:
        return azurite_connection_string(self.port)

    def start(self, timeout: float = 30.0) -> Azurite:
        if _listening(self.port):
            raise RuntimeError(f"port {self.port} is taken; is another Azurite or `mlops up` running?")
        executable = PROJECT_ROOT / "node_modules" / ".bin" / "azurite-blob"
        if not executable.exists():
            found = shutil.which("azurite-blob")
            if found is None:
                raise RuntimeError(
                    "Azurite is not installed: run `npm ci` in the project folder (make does it)"
                )
            executable = Path(found)
        location = self.home / "azurite"
        location.mkdir(parents=True, exist_ok=True)
        command = [
            str(executable),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(self.port),
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
        ]
        command += ["--inMemoryPersistence"] if self.in_memory else ["--location", str(location)]
        log = open(location / "azurite.log", "ab")  # noqa: SIM115 - kept open for the process's lifetime
        self._process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not _listening(self.port):
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"Azurite exited with {self._process.returncode}; see {location / 'azurite.log'}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"Azurite did not listen on {self.port} within {timeout} s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.send_signal(signal.SIGINT)
        # After serving requests Azurite takes seconds to close; in memory there is nothing to flush, so do
        # not wait for it, while on disk it gets the time to save its metadata.
        try:
            self._process.wait(timeout=0.5 if self.in_memory else 15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
