#!/usr/bin/env python3
"""Interoperability: an independent OAuth 2.0 client library (Authlib) talks
to a running auth server through the standard endpoints only.

Discovery (RFC 8414) -> refresh_token grant and rotation (RFC 6749 §6),
automatic refresh of an expired token by the library -> revocation
(RFC 7009) -> introspection (RFC 7662) as a resource server would.

The session starts with our own `/auth/login` (a password is not an OAuth
grant here); everything after that is Authlib's. Run by the auth server's
test `oauth::authlib_interoperates` (which starts a server for it), or by
hand against any server:

    AUTH_URL=http://127.0.0.1:8080 INTERNAL_API_TOKEN=... python3 scripts/oauth_interop.py

Needs `python3 -m pip install 'authlib==1.9.6'` (what .ci/run installs).
"""

import os
import sys
import time
import uuid

import requests
from requests.auth import AuthBase

# Authlib insists on https; the test server is plain HTTP on loopback.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

from authlib.integrations.requests_client import OAuth2Session, OAuthError  # noqa: E402
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata  # noqa: E402

AUTH_URL = os.environ.get("AUTH_URL", "http://127.0.0.1:8080").rstrip("/")
INTERNAL_API_TOKEN = os.environ.get(
    "INTERNAL_API_TOKEN", "development-internal-token-not-for-production"
)
PASSWORD = "correct horse battery staple"
TIMEOUT = 10


class Bearer(AuthBase):
    """How a resource server authenticates to the introspection endpoint."""

    def __init__(self, token):
        self.token = token

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def check(condition, message):
    if not condition:
        raise AssertionError(message)
    print(f"ok: {message}")


def login():
    email = f"authlib-{uuid.uuid4().hex[:12]}@example.com"
    created = requests.post(
        f"{AUTH_URL}/auth/register",
        json={"email": email, "password": PASSWORD},
        timeout=TIMEOUT,
    )
    check(created.status_code == 201, f"registered {email} ({created.status_code})")
    response = requests.post(
        f"{AUTH_URL}/auth/login",
        json={"email": email, "password": PASSWORD, "refresh_token_delivery": "body"},
        timeout=TIMEOUT,
    )
    check(response.status_code == 200, f"logged in ({response.status_code})")
    return response.json()


def discover():
    response = requests.get(
        f"{AUTH_URL}/.well-known/oauth-authorization-server", timeout=TIMEOUT
    )
    check(response.status_code == 200, "metadata served")
    metadata = AuthorizationServerMetadata(response.json())
    # Every RFC 8414 rule Authlib knows, but one: `response_types_supported`
    # is empty (there is no authorization endpoint), which Authlib reads as
    # missing.
    for name in dir(metadata):
        if name.startswith("validate_") and name != "validate_response_types_supported":
            getattr(metadata, name)()
    check(metadata["response_types_supported"] == [], "no response types: no authorization endpoint")
    check(
        metadata["token_endpoint"] == f"{AUTH_URL}/oauth/token",
        "the token endpoint is where the server is",
    )
    return metadata


def introspect(metadata, token):
    """As a resource server: Authlib's introspection with our Bearer token."""
    client = OAuth2Session(client_id="resource-server")
    response = client.introspect_token(
        metadata["introspection_endpoint"],
        token=token,
        auth=Bearer(INTERNAL_API_TOKEN),
        timeout=TIMEOUT,
    )
    check(response.status_code == 200, "introspection answered")
    return response.json()


def main():
    metadata = discover()
    token = login()
    first_refresh = token["refresh_token"]
    session = OAuth2Session(
        client_id="authlib-interop",
        token_endpoint_auth_method="none",
        revocation_endpoint_auth_method="none",
        token=token,
        # What the library reads to refresh an expired token by itself.
        token_endpoint=metadata["token_endpoint"],
    )

    # The refresh_token grant, as Authlib sends it (client_id in the form).
    rotated = session.refresh_token(metadata["token_endpoint"], timeout=TIMEOUT)
    check(rotated["token_type"] == "Bearer", "a Bearer token")
    check(rotated["refresh_token"] != first_refresh, "the refresh token rotated")
    check(rotated["expires_in"] > 0, "expires_in given")
    second_refresh = rotated["refresh_token"]

    described = introspect(metadata, rotated["access_token"])
    check(described["active"] is True, "the new access token is active")
    check(described["token_type"] == "access_token", "introspected as an access token")
    check(described["iss"] == metadata["issuer"], "issued by the discovered issuer")

    # A lost answer: the consumed token within the grace gets the same successor.
    retry = OAuth2Session(client_id="authlib-interop", token_endpoint_auth_method="none")
    again = retry.refresh_token(
        metadata["token_endpoint"], refresh_token=first_refresh, timeout=TIMEOUT
    )
    check(again["refresh_token"] == second_refresh, "grace: the very same successor")

    # Authlib refreshes an expired token by itself before a request.
    session.token["expires_at"] = int(time.time()) - 60
    sessions = session.get(f"{AUTH_URL}/auth/sessions", timeout=TIMEOUT)
    check(sessions.status_code == 200, f"automatic refresh, then a Bearer call ({sessions.status_code})")
    third_refresh = session.token["refresh_token"]
    check(third_refresh not in (first_refresh, second_refresh), "rotated again")

    # Errors are RFC 6749 §5.2 bodies Authlib understands.
    try:
        retry.refresh_token(metadata["token_endpoint"], refresh_token="junk", timeout=TIMEOUT)
        raise AssertionError("a junk refresh token was accepted")
    except OAuthError as error:
        check(error.error == "invalid_grant", "junk: invalid_grant")

    # Revocation of the refresh token ends the session.
    access = session.token["access_token"]
    check(introspect(metadata, third_refresh)["active"] is True, "the refresh token is active")
    revoked = session.revoke_token(
        metadata["revocation_endpoint"],
        token=third_refresh,
        token_type_hint="refresh_token",
        timeout=TIMEOUT,
    )
    check(revoked.status_code == 200, "revoked")
    check(introspect(metadata, third_refresh) == {"active": False}, "revoked refresh token inactive")
    check(introspect(metadata, access) == {"active": False}, "its session's access token inactive")
    try:
        retry.refresh_token(metadata["token_endpoint"], refresh_token=third_refresh, timeout=TIMEOUT)
        raise AssertionError("a revoked refresh token was accepted")
    except OAuthError as error:
        check(error.error == "invalid_grant", "revoked: invalid_grant")

    # Revoking by access token, in a second session.
    other = login()
    revoked = session.revoke_token(
        metadata["revocation_endpoint"],
        token=other["access_token"],
        token_type_hint="access_token",
        timeout=TIMEOUT,
    )
    check(revoked.status_code == 200, "revoked by access token")
    check(introspect(metadata, other["refresh_token"]) == {"active": False}, "its refresh token inactive")
    print("authlib interoperability: all checks passed")


if __name__ == "__main__":
    try:
        main()
    except (AssertionError, OAuthError, requests.RequestException) as failure:
        print(f"FAILED: {failure!r}", file=sys.stderr)
        sys.exit(1)
