#!/usr/bin/env python3
"""Interoperability: an independent TOTP implementation (Python's pyotp)
enrols and signs in, from nothing but the `otpauth://` URI the server gives,
as an authenticator app would.

Register -> log in -> POST /auth/mfa/totp -> pyotp parses the URI ->
confirm with pyotp's code -> log in: 403 mfa_required -> POST
/auth/login/mfa with pyotp's code for the next step (the server accepts
one step either side, and a step once) -> the access token says aal2 ->
POST /auth/reauthenticate with a recovery code.

Run by the auth server's test `second_factors::pyotp_interoperates` (which
starts a server for it), or by hand against any server:

    AUTH_URL=http://127.0.0.1:8080 python3 scripts/totp_interop.py

Needs `python3 -m pip install 'pyotp==2.12.1' requests` (what .ci/run
installs).
"""

import base64
import json
import os
import sys
import time
import uuid

import pyotp
import requests

AUTH_URL = os.environ.get("AUTH_URL", "http://127.0.0.1:8080").rstrip("/")
PASSWORD = "correct horse battery staple"
TIMEOUT = 10


def check(condition, what):
    if not condition:
        sys.exit(f"FAILED: {what}")
    print(f"ok: {what}")


def post(path, body=None, bearer=None):
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return requests.post(f"{AUTH_URL}{path}", json=body, headers=headers, timeout=TIMEOUT)


def claims(jwt):
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def main():
    email = f"pyotp-{uuid.uuid4()}@example.com"
    check(post("/auth/register", {"email": email, "password": PASSWORD}).status_code == 201, "registered")
    login = {"email": email, "password": PASSWORD, "refresh_token_delivery": "body"}
    first = post("/auth/login", login)
    check(first.status_code == 200, "logged in with the password alone")
    access = first.json()["access_token"]

    enrolment = post("/auth/mfa/totp", bearer=access).json()
    totp = pyotp.parse_uri(enrolment["otpauth_uri"])
    check(isinstance(totp, pyotp.TOTP), "pyotp reads the otpauth URI as TOTP")
    check(totp.secret == enrolment["secret"], "the URI carries the secret shown")
    check(totp.digits == 6 and totp.interval == 30, "6 digits, 30 seconds")
    check(len(base64.b32decode(totp.secret + "=" * (-len(totp.secret) % 8))) == 20, "160 bits")

    now = time.time()
    confirmed = post("/auth/mfa/totp/confirm", {"code": totp.at(now)}, bearer=access)
    check(confirmed.status_code == 200, "pyotp's code confirms the enrolment")
    recovery = confirmed.json()["recovery_codes"]
    check(len(recovery) == 10, "ten recovery codes with the first second factor")

    challenge = post("/auth/login", login)
    check(challenge.status_code == 403 and challenge.json()["error"] == "mfa_required", "the password alone is no longer enough")
    body = challenge.json()
    check(body["methods"] == ["totp", "recovery_code"], "the methods the user has")
    replay = post("/auth/login/mfa", {"mfa_token": body["mfa_token"], "code": totp.at(now)})
    check(replay.status_code == 401, "the confirming code is not accepted again")
    signed_in = post("/auth/login/mfa", {"mfa_token": body["mfa_token"], "code": totp.at(now + 30), "refresh_token_delivery": "body"})
    check(signed_in.status_code == 200, "pyotp's next code completes the login")
    token = claims(signed_in.json()["access_token"])
    check(token["acr"] == "aal2" and token["amr"] == ["pwd", "otp", "mfa"], "the session is aal2")
    check(abs(token["auth_time"] - time.time()) < 5, "auth_time is now")

    stepped = post("/auth/reauthenticate", {"password": PASSWORD, "recovery_code": recovery[0]}, bearer=signed_in.json()["access_token"])
    check(stepped.status_code == 200 and "refresh_token" not in stepped.json(), "a recovery code steps up, access token only")
    print("all checks passed")


if __name__ == "__main__":
    main()
