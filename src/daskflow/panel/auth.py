"""Who may open the panel: anyone on this machine, or whoever knows the password.

The panel shows parameters, errors and logs, so it is for this machine only
(127.0.0.1) unless the user names another address. On any other address it
asks for a password through HTTP basic auth (user ``daskflow``); the password
comes from the config key ``daskflow.dashboard.password``, else the env var
``DASKFLOW_DASHBOARD_PASSWORD``. Without one, the panel is not served there.

The check sits in front of the Bokeh application's routing
(:class:`PasswordGate`): every request the panel would answer — the page,
its static files, its metadata and the websocket upgrade — is answered 401
unless it carries the right ``Authorization`` header, so nothing reaches
Bokeh's handlers first (a websocket is refused before its handshake).
Browsers send cached basic credentials on same-origin websocket upgrades.

Websocket origins are restricted to the names the server is reached by:
the address it listens on (every address of the machine for a wildcard
such as ``0.0.0.0``) and the names the user adds; never ``*``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import os
import socket
from collections.abc import Iterable
from typing import Any

from tornado.web import Application, ErrorHandler, RequestHandler

from daskflow import config
from daskflow.errors import ConfigurationError

__all__ = [
    "ENV_PASSWORD",
    "USER",
    "PasswordGate",
    "configured_password",
    "is_loopback",
    "password_is_right",
    "require_password",
    "websocket_origins",
]

USER = "daskflow"
ENV_PASSWORD = "DASKFLOW_DASHBOARD_PASSWORD"
_REALM = 'Basic realm="daskflow panel", charset="UTF-8"'
_WILDCARDS = ("", "0.0.0.0", "::", "*")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable from this machine only.

    Other names count as beyond loopback: the check stays on the safe side
    rather than trusting what a name resolves to today.
    """
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def configured_password() -> str | None:
    """The panel's password: ``daskflow.dashboard.password``, else the env var, else None."""
    password = config.get("dashboard.password") or os.environ.get(ENV_PASSWORD)
    return str(password) if password else None


def require_password(host: str) -> str | None:
    """The password the panel on ``host`` asks for: None on loopback, required elsewhere.

    Raises
    ------
    ConfigurationError
        ``host`` is beyond loopback and no password is configured.
    """
    if is_loopback(host):
        return None
    password = configured_password()
    if password is None:
        raise ConfigurationError(
            "daskflow.dashboard.password",
            None,
            f"a password to serve the panel on {host or '0.0.0.0'}, beyond 127.0.0.1 "
            f"(set it, or the env var {ENV_PASSWORD}; or listen on 127.0.0.1)",
        )
    return password


def password_is_right(authorization: str | None, password: str) -> bool:
    """Whether an ``Authorization`` header carries user ``daskflow`` and ``password``.

    Both are compared in constant time (:func:`hmac.compare_digest`).
    """
    scheme, _, encoded = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    user, sep, given = decoded.partition(b":")
    user_ok = hmac.compare_digest(user, USER.encode())
    password_ok = hmac.compare_digest(given, password.encode())
    return bool(sep) and user_ok and password_ok


class _Unauthorized(RequestHandler):
    """Answers every request 401 with a basic-auth challenge (no body worth reading)."""

    def prepare(self) -> None:
        self.set_status(401)
        self.set_header("WWW-Authenticate", _REALM)
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish("401: the daskflow panel needs its password (user 'daskflow')\n")


class PasswordGate(Application):
    """Mixin for a Tornado application whose every route needs the password.

    Put it before the application class: ``class Gated(PasswordGate,
    BokehTornado)``. Requests for paths the application does not serve go on
    unchanged (a 404 of its own, or another application of a shared server).

    Parameters
    ----------
    password
        The password of user ``daskflow``.
    """

    def __init__(self, *args: Any, password: str, **kwargs: Any) -> None:
        self.password = password
        super().__init__(*args, **kwargs)

    def find_handler(self, request: Any, **kwargs: Any) -> Any:
        delegate = super().find_handler(request, **kwargs)
        if issubclass(getattr(delegate, "handler_class", ErrorHandler), ErrorHandler):
            return delegate  # not one of ours
        if password_is_right(request.headers.get("Authorization"), self.password):
            return delegate
        return self.get_handler_delegate(request, _Unauthorized)


def websocket_origins(host: str, port: int, extra: Iterable[str] = ()) -> list[str]:
    """``host:port`` names a browser may open the panel's websocket from.

    Parameters
    ----------
    host
        The address the server listens on; a wildcard (``0.0.0.0``, ``::``)
        stands for every address and name of this machine.
    port
        The port it listens on.
    extra
        Names the user adds: ``name`` (this port), ``name:port`` or an
        origin ``https://name[:port]``.
    """
    names: set[str] = set()
    if is_loopback(host):
        names.update(("127.0.0.1", "localhost", "[::1]"))
    elif host.strip().strip("[]") in _WILDCARDS:
        names.update(("127.0.0.1", "localhost", "[::1]", *_machine_names()))
    else:
        names.add(f"[{host}]" if ":" in host else host)
    origins = {f"{name.lower()}:{port}" for name in names}
    for given in extra:
        origins.add(_origin(given, port))
    return sorted(origins)


def _origin(given: str, port: int) -> str:
    given = given.strip().rstrip("/").lower()
    if "://" in given:  # an origin as a browser sends it: no port means the default
        netloc = given.split("://", 1)[1]
        return netloc if netloc.rsplit("]", 1)[-1].count(":") else f"{netloc}:80"
    if not given or given == "*" or "*" in given:
        raise ConfigurationError("--allow-origin", given, "a host name, host:port or an origin")
    return given if given.rsplit("]", 1)[-1].count(":") == 1 else f"{given}:{port}"


def _machine_names() -> set[str]:
    import psutil

    names = {socket.gethostname(), socket.getfqdn()}
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET:
                names.add(address.address)
            elif address.family == socket.AF_INET6:
                names.add(f"[{address.address.split('%')[0]}]")
    return {name for name in names if name}
