"""Hosts on one machine: Linux network namespaces joined by a bridge, or loopback addresses.

:class:`Hosts` makes each "host" a network namespace of its own with one
address in the private network :data:`SUBNET` ``.0/24`` (the bridge
:data:`BRIDGE` joins them, and holds ``.1`` for the test process itself),
and starts processes in them with ``ip netns exec``. The processes share the
machine's files, as hosts sharing a network file system would, but nothing
else: each listens on its own address, and reaches the others over the
bridge. Where namespaces are not permitted (no root, no ``CAP_NET_ADMIN``),
every host is a loopback address of its own (``127.0.0.2`` …) in the one
network namespace, and :attr:`Hosts.mode` says ``"loopback"`` (the env var
``DASKFLOW_TEST_MULTIHOST=loopback`` asks for it).

Only names the harness made are ever removed: the namespaces and links named
with :data:`PREFIX`, the processes it started (each in a session of its own,
killed by process group).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["BRIDGE", "PREFIX", "SUBNET", "Host", "Hosts"]

#: The private /24 the namespaces get their addresses from (``.1`` is the bridge).
SUBNET = "10.213.7"
#: Every namespace and link the harness makes starts with this.
PREFIX = "dfmh"
BRIDGE = f"{PREFIX}-br"


@dataclass(frozen=True)
class Host:
    """One host: a name, its address, and its namespace (None on loopback)."""

    name: str
    address: str
    netns: str | None

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` as run on this host."""
        if self.netns is None:
            return list(argv)
        return ["ip", "netns", "exec", self.netns, *argv]


class Hosts:
    """Hosts made on demand, and every process started on them; :meth:`close` removes all."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        forced = os.environ.get("DASKFLOW_TEST_MULTIHOST") == "loopback"  # to try the fallback
        self.mode: Literal["namespaces", "loopback"] = (
            "namespaces" if not forced and _namespaces_permitted() else "loopback"
        )
        self.hosts: dict[str, Host] = {}
        self._processes: list[subprocess.Popen[bytes]] = []
        if self.mode == "namespaces":
            _remove_leftovers()
            _ip("link", "add", BRIDGE, "type", "bridge")
            _ip("addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE)
            _ip("link", "set", BRIDGE, "up")

    def add(self, name: str) -> Host:
        """A new host called ``name`` (a few letters: it names a namespace and a link)."""
        number = len(self.hosts) + 2
        if self.mode == "loopback":
            host = Host(name, f"127.0.0.{number}", None)
        else:
            netns, link = f"{PREFIX}-{name}", f"{PREFIX}{number}"
            _ip("netns", "add", netns)
            _ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", netns)
            _ip("link", "set", link, "master", BRIDGE, "up")
            _ip("-n", netns, "addr", "add", f"{SUBNET}.{number}/24", "dev", "eth0")
            _ip("-n", netns, "link", "set", "eth0", "up")
            _ip("-n", netns, "link", "set", "lo", "up")
            host = Host(name, f"{SUBNET}.{number}", netns)
        self.hosts[name] = host
        return host

    @property
    def network(self) -> str:
        """The addresses of every host, for an allow list (``pg_hba.conf``)."""
        return f"{SUBNET}.0/24" if self.mode == "namespaces" else "127.0.0.0/8"

    def start(
        self,
        host: Host,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: dict[str, str] | None = None,
        log: str,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` on ``host`` in a session of its own; output to ``logs/LOG``."""
        with open(self.logs / log, "ab") as out:
            process = subprocess.Popen(
                host.command(argv),
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._processes.append(process)
        return process

    def run(
        self, host: Host, argv: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` on ``host`` to its end, output captured."""
        return subprocess.run(
            host.command(argv), cwd=cwd, env=env, capture_output=True, text=True, timeout=120
        )

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """Kill ``process`` and everything it started (its process group), at once."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def stop(self, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
        """Ask ``process`` to stop (SIGTERM, as a service manager does) and wait for it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)

    def close(self) -> None:
        """Stop every process started here, then remove the namespaces and the bridge."""
        for process in reversed(self._processes):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        deadline = time.monotonic() + 10
        for process in self._processes:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                self.kill(process)
        if self.mode == "namespaces":
            _remove_leftovers()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def _namespaces_permitted() -> bool:
    """True if this process may make network namespaces (tried, then removed)."""
    if shutil.which("ip") is None or os.geteuid() != 0:
        return False
    probe = f"{PREFIX}-probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, timeout=30)
    if made.returncode != 0:
        return False
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=30)
    return True


def _remove_leftovers() -> None:
    """Remove the namespaces and links of this harness (a run killed before it cleaned up)."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30)
    for line in listed.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(f"{PREFIX}-"):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=30)
    for line in links.stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith(PREFIX):
            subprocess.run(["ip", "link", "del", name], capture_output=True, timeout=30)
