"""A real OAuth2 server on 127.0.0.1 for tests: HTTPS, the device-code grant, refresh tokens.

It speaks what msal expects of Microsoft Entra: an OpenID discovery document at
`<authority>/v2.0/.well-known/openid-configuration`, a device authorization endpoint and a
token endpoint (RFC 8628: authorization_pending, slow_down, expired_token, access_denied;
RFC 6749 refresh tokens). The test plays the person at the sign-in page by POSTing the user
code to `/devicelogin` (see `approve`), the way they would type it at microsoft.com/devicelogin.
The SMTP test server asks `valid` whether an XOAUTH2 token is good; Dovecot asks
`/introspect/imap` (RFC 7662) whether an IMAP token is.

    with running_oauth_server(certificates) as oauth:
        threading.Thread(target=oauth.approve_when_asked).start()
        runner.invoke(app, ["login"])
"""

from __future__ import annotations

import base64
import json
import secrets
import ssl
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.smtp_server import HOST, USERNAME, Certificates

TENANT = "smakom-test-tenant"
CLIENT_ID = "7b1f0c2e-5a8d-4c1e-9f3a-000000000013"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# msal treats an access token with less than five minutes left as expired and renews it. The
# server says a token lives that much longer than it really does (less a second of safety),
# so a test can watch a token expire, and be renewed, within seconds.
MSAL_MARGIN = 299
IMAP_SCOPE = "https://outlook.office.com/IMAP.AccessAsUser.All"


@dataclass
class DeviceGrant:
    device_code: str
    user_code: str
    scope: str
    expires_at: float
    state: str = "pending"  # "approved", "denied", "used"


@dataclass
class Issued:
    username: str
    scope: str
    expires_at: float


@dataclass
class OAuthTestServer:
    """The running server's state; set the knobs before signing in."""

    base_url: str
    ca_file: str
    username: str = USERNAME
    token_lifetime: float = 3600.0
    """How long an access token is really good for (SMTP checks this)."""
    code_lifetime: int = 60
    """Seconds a device code can be entered."""
    slow_down: int = 0
    """Answer this many polls with slow_down before anything else."""
    approve_at_once: bool = False
    """Codes count as entered and accepted the moment they are issued: for tests where
    signing in is only the setup (the first poll then succeeds, no wait)."""
    grants: list[DeviceGrant] = field(default_factory=list)
    access_tokens: dict[str, Issued] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    polls: int = 0
    refreshes: int = 0
    code_issued: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def authority(self) -> str:
        return f"{self.base_url}/{TENANT}"

    def toml(self) -> str:
        """An [oauth] table for smakom.toml pointing at this server."""
        return (
            f'\n[oauth]\nclient_id = "{CLIENT_ID}"\nauthority = "{self.authority}"\n'
            f"ca_file = {self.ca_file!r}\n"
        )

    def valid(self, username: str, token: str, scope: str) -> bool:
        """Whether `token` is a live access token of `username` for `scope`."""
        with self.lock:
            issued = self.access_tokens.get(token)
        return (
            issued is not None
            and issued.username.lower() == username.lower()
            and scope in issued.scope.split()
            and time.time() < issued.expires_at
        )

    def approve(self, *, deny: bool = False) -> None:
        """What the person at the sign-in page does: enter the latest code, accept or decline."""
        with self.lock:
            user_code = self.grants[-1].user_code
        body = urllib.parse.urlencode(
            {"user_code": user_code, "action": "deny" if deny else "approve"}
        ).encode()
        context = ssl.create_default_context(cafile=self.ca_file)
        request = urllib.request.Request(f"{self.base_url}/devicelogin", data=body)
        with urllib.request.urlopen(request, context=context, timeout=5) as response:
            assert response.status == 200

    def approve_when_asked(self, *, deny: bool = False, timeout: float = 10.0) -> None:
        """Wait (bounded) until smakom has shown a code, then approve (or deny) it."""
        if self.code_issued.wait(timeout):
            self.approve(deny=deny)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far stops working now (refresh tokens still do)."""
        with self.lock:
            for issued in self.access_tokens.values():
                issued.expires_at = 0.0

    def secrets(self) -> list[str]:
        """Every token and code this server handed out: none may appear in a file or output."""
        with self.lock:
            return [
                *self.access_tokens,
                *self.refresh_tokens,
                *(grant.device_code for grant in self.grants),
            ]

    # What the HTTP handler calls -----------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        base = f"{self.authority}/oauth2/v2.0"
        return {
            "issuer": f"{self.authority}/v2.0",
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "device_authorization_endpoint": f"{base}/devicecode",
        }

    def device_code(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("client_id") != CLIENT_ID:
            return 400, {"error": "unauthorized_client", "error_description": "AADSTS700016"}
        grant = DeviceGrant(
            device_code=secrets.token_urlsafe(24),
            user_code=secrets.token_hex(4).upper(),
            scope=form.get("scope", ""),
            expires_at=time.time() + self.code_lifetime,
            state="approved" if self.approve_at_once else "pending",
        )
        with self.lock:
            self.grants.append(grant)
        self.code_issued.set()
        return 200, {
            "device_code": grant.device_code,
            "user_code": grant.user_code,
            "verification_uri": f"{self.base_url}/devicelogin",
            "expires_in": self.code_lifetime,
            "interval": 1,
            "message": f"Open {self.base_url}/devicelogin and enter {grant.user_code}.",
        }

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("client_id") != CLIENT_ID:
            return 400, {"error": "invalid_client"}
        if form.get("grant_type") == DEVICE_GRANT:
            return self._device_token(form.get("device_code", ""))
        if form.get("grant_type") == "refresh_token":
            with self.lock:
                username = self.refresh_tokens.get(form.get("refresh_token", ""))
                self.refreshes += 1
            if username is None:
                return 400, {"error": "invalid_grant", "error_description": "AADSTS70008"}
            return 200, self._tokens(username, form.get("scope", ""))
        return 400, {"error": "unsupported_grant_type"}

    def introspect(self, form: dict[str, str], scope: str) -> tuple[int, dict[str, Any]]:
        """RFC 7662 token introspection, as Dovecot's oauth2 passdb asks it: active only
        for a live token that carries `scope`."""
        with self.lock:
            issued = self.access_tokens.get(form.get("token", ""))
        if issued is None or not self.valid(issued.username, form["token"], scope):
            return 200, {"active": False}
        return 200, {"active": True, "username": issued.username, "scope": issued.scope}

    def decide(self, form: dict[str, str]) -> int:
        with self.lock:
            for grant in self.grants:
                if grant.user_code == form.get("user_code") and grant.state == "pending":
                    grant.state = "denied" if form.get("action") == "deny" else "approved"
                    return 200
        return 404

    def _device_token(self, device_code: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.polls += 1
            grant = next((g for g in self.grants if g.device_code == device_code), None)
            if grant is None or grant.state == "used":
                return 400, {"error": "invalid_grant"}
            if time.time() >= grant.expires_at:
                return 400, {"error": "expired_token"}
            if self.slow_down > 0:
                self.slow_down -= 1
                return 400, {"error": "slow_down"}
            if grant.state == "denied":
                return 400, {"error": "access_denied"}
            if grant.state == "pending":
                return 400, {"error": "authorization_pending"}
            grant.state = "used"
        return 200, self._tokens(self.username, grant.scope)

    def _tokens(self, username: str, requested: str) -> dict[str, Any]:
        reserved = {"openid", "profile", "offline_access"}
        scope = " ".join(s for s in requested.split() if s not in reserved)
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        with self.lock:
            self.access_tokens[access] = Issued(username, scope, time.time() + self.token_lifetime)
            self.refresh_tokens[refresh] = username
        now = int(time.time())
        claims = {
            "iss": f"{self.authority}/v2.0",
            "aud": CLIENT_ID,
            "sub": "office-subject",
            "oid": "office-object-id",
            "tid": TENANT,
            "preferred_username": username,
            "iat": now,
            "exp": now + 3600,
        }
        client_info = {"uid": "office-object-id", "utid": TENANT}
        return {
            "token_type": "Bearer",
            "scope": scope,
            "expires_in": int(self.token_lifetime) + MSAL_MARGIN,
            "access_token": access,
            "refresh_token": refresh,
            "id_token": f"{_b64(json.dumps({'alg': 'none'}))}.{_b64(json.dumps(claims))}.",
            "client_info": _b64(json.dumps(client_info)),
        }


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        state = self.server.state
        if self.path == f"/{TENANT}/v2.0/.well-known/openid-configuration":
            self._json(200, state.discovery())
        else:
            self._json(404, {"error": "not_found"})

    def do_POST(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length", "0"))
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        if self.path == f"/{TENANT}/oauth2/v2.0/devicecode":
            self._json(*state.device_code(form))
        elif self.path == f"/{TENANT}/oauth2/v2.0/token":
            self._json(*state.token(form))
        elif self.path == "/introspect/imap":
            self._json(*state.introspect(form, IMAP_SCOPE))
        elif self.path == "/devicelogin":
            self._json(state.decide(form), {})
        else:
            self._json(404, {"error": "not_found"})

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest shows stderr of failing tests, and the defaults print every request."""


class _Server(ThreadingHTTPServer):
    state: OAuthTestServer
    daemon_threads = True


@contextmanager
def running_oauth_server(certificates: Certificates) -> Iterator[OAuthTestServer]:
    """Start the HTTPS server on a free port of 127.0.0.1 and stop it after."""
    server = _Server((HOST, 0), _Handler)
    server.socket = certificates.server_context().wrap_socket(server.socket, server_side=True)
    server.state = OAuthTestServer(
        base_url=f"https://{HOST}:{server.server_address[1]}",
        ca_file=str(certificates.ca_file),
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
