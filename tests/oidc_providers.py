"""Fixtures shared by the end-to-end tests: real OpenID Connect providers (PyPI ``oidc-provider-mock``) on loopback.

Started once per test session, in threads of the test process (werkzeug's threaded server), each on its
own 127.0.0.1 port, so each is its own issuer (``http://127.0.0.1:<port>``):

* ``main`` - issues ID tokens valid for an hour;
* ``expired`` - issues ID tokens that expired ten minutes before they were issued
  (``access_token_max_age`` of minus ten minutes: far past faceward's 60 s of clock skew);
* ``other_audience`` - the same provider behind a WSGI layer that rewrites the client id of the
  authorization request and of the token request's credentials to another application's, so the
  provider signs an ID token whose audience is that application, not faceward.

The people (``sub`` and claims) are predefined: the provider's consent page signs one in by ``sub``.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest

PEOPLE = {
    "alice": {"name": "Alice Example", "email": "alice@example.org", "groups": ["staff", "faceward-searchers"]},
    "bob": {"name": "Bob Example", "email": "bob@example.org", "groups": ["faceward-searchers"]},
    "carol": {"name": "Carol Auditor", "email": "carol@example.org", "groups": ["faceward-auditors"]},
    "mallory": {"name": "Mallory Nogroup", "email": "mallory@example.org", "groups": ["staff"]},
}
OTHER_APP = "another-application"


@dataclass(frozen=True)
class Providers:
    main: str
    expired: str
    other_audience: str


class OtherAudience:
    """WSGI: the provider answers as though another application had asked (see the module's docstring)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/oauth2/authorize":
            query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
            query["client_id"] = [OTHER_APP]
            environ["QUERY_STRING"] = urlencode(query, doseq=True)
        elif path == "/oauth2/token":
            environ["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(f"{OTHER_APP}:its-own-secret".encode()).decode()
        return self.app(environ, start_response)


def start_providers() -> Iterator[Providers]:
    provider = pytest.importorskip("oidc_provider_mock", reason="pip install -e '.[test]' (oidc-provider-mock)")
    import werkzeug.serving

    users = [provider.User(sub=sub, claims=claims) for sub, claims in PEOPLE.items()]
    apps = [
        provider.app(user_claims=users),
        provider.app(user_claims=users, access_token_max_age=timedelta(minutes=-10)),
        OtherAudience(provider.app(user_claims=users)),
    ]
    servers = [werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True) for app in apps]
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    try:
        yield Providers(*(f"http://127.0.0.1:{s.server_port}" for s in servers))
    finally:
        for server, thread in zip(servers, threads):
            server.shutdown()
            server.server_close()
            thread.join(5)
