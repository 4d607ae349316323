#!/usr/bin/env python3
"""Interoperability: passkeys from outside, with a software authenticator
built on Yubico's python-fido2 (an independent WebAuthn implementation) and
`cryptography`, speaking the contract's JSON forms only.

Every ceremony is started on one server and finished on another (a
replica) when `FINISH_URL` names one. It registers a passkey, signs in with it alone, uses it as a second factor
after the password and to reauthenticate, and checks the refusals that a
browser test cannot easily make: a replayed ceremony, a signature counter
that goes backwards (`passkey_clone_suspected`), an authenticator that did
not verify its user, and a page of another origin. Removing the passkey
ends the session it signed in.

Run by the auth server's test `passkeys::fido2_interoperates` (which starts
a server for it), or by hand:

    AUTH_URL=http://127.0.0.1:8080 ORIGIN=http://localhost:3000 python3 scripts/passkey_interop.py

Needs `python3 -m pip install 'fido2==2.2.1' requests` (what .ci/run
installs).
"""

import base64
import hashlib
import json
import os
import sys
import uuid

import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fido2.cose import ES256
from fido2.webauthn import AttestationObject, AttestedCredentialData, AuthenticatorData

AUTH_URL = os.environ.get("AUTH_URL", "http://127.0.0.1:8080").rstrip("/")
# Ceremonies are finished here: another replica, when the test gives one.
FINISH_URL = os.environ.get("FINISH_URL", AUTH_URL).rstrip("/")
ORIGIN = os.environ.get("ORIGIN", "http://localhost:3000")
RP_ID = os.environ.get("RP_ID", "localhost")
PASSWORD = "correct horse battery staple"
TIMEOUT = 10

UP, UV, AT = 0x01, 0x04, 0x40


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check(condition, what):
    if not condition:
        sys.exit(f"FAILED: {what}")
    print(f"ok: {what}")


def post(path, body=None, bearer=None):
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    base = FINISH_URL if path.endswith("/finish") else AUTH_URL
    return requests.post(f"{base}{path}", json=body, headers=headers, timeout=TIMEOUT)


def get(path, bearer):
    return requests.get(f"{AUTH_URL}{path}", headers={"Authorization": f"Bearer {bearer}"}, timeout=TIMEOUT)


def claims(jwt):
    return json.loads(unb64(jwt.split(".")[1]))


class SoftPasskey:
    """One discoverable credential, as a platform authenticator keeps it."""

    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.user_handle = None
        self.counter = 0

    def client_data(self, kind, challenge, origin):
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}).encode()

    def create(self, options, origin=ORIGIN):
        self.user_handle = unb64(options["user"]["id"])
        client_data = self.client_data("webauthn.create", options["challenge"], origin)
        attested = AttestedCredentialData.create(b"\0" * 16, self.credential_id, ES256.from_cryptography_key(self.key.public_key()))
        auth_data = AuthenticatorData.create(hashlib.sha256(RP_ID.encode()).digest(), UP | UV | AT, self.counter, attested)
        attestation = AttestationObject.create("none", auth_data, {})
        return {
            "id": b64(self.credential_id),
            "rawId": b64(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(client_data),
                "attestationObject": b64(bytes(attestation)),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        }

    def get(self, options, origin=ORIGIN, flags=UP | UV, counter=None):
        self.counter = self.counter + 1 if counter is None else counter
        client_data = self.client_data("webauthn.get", options["challenge"], origin)
        auth_data = bytes(AuthenticatorData.create(hashlib.sha256(RP_ID.encode()).digest(), flags, self.counter))
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return {
            "id": b64(self.credential_id),
            "rawId": b64(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(client_data),
                "authenticatorData": b64(auth_data),
                "signature": b64(signature),
                "userHandle": b64(self.user_handle),
            },
            "clientExtensionResults": {},
        }


def sign_in(device, **assertion):
    started = post("/auth/passkeys/login/start", {}).json()
    check("allowCredentials" not in started["options"] or not started["options"]["allowCredentials"], "a sign-in names no credential: the authenticator does")
    credential = device.get(started["options"], **assertion)
    return post("/auth/passkeys/login/finish", {"challenge_id": started["challenge_id"], "credential": credential, "refresh_token_delivery": "body"}), started, credential


def main():
    email = f"fido2-{uuid.uuid4()}@example.com"
    check(post("/auth/register", {"email": email, "password": PASSWORD}).status_code == 201, "registered")
    login = {"email": email, "password": PASSWORD, "refresh_token_delivery": "body"}
    access = post("/auth/login", login).json()["access_token"]

    started = post("/auth/passkeys/register/start", bearer=access).json()
    selection = started["options"]["authenticatorSelection"]
    check(selection["residentKey"] == "required" and selection["userVerification"] == "required", "a discoverable credential with user verification is asked for")
    device = SoftPasskey()
    finished = post("/auth/passkeys/register/finish", {"challenge_id": started["challenge_id"], "credential": device.create(started["options"]), "name": "Laptop"}, bearer=access)
    check(finished.status_code == 201, f"registered a passkey ({finished.status_code} {finished.text[:200]})")
    check(len(finished.json()["recovery_codes"]) == 10, "the first second factor comes with ten recovery codes")
    again = post("/auth/passkeys/register/finish", {"challenge_id": started["challenge_id"], "credential": device.create(started["options"])}, bearer=access)
    check(again.status_code == 400 and again.json()["error"] == "invalid_grant", "a registration ceremony is single use")
    listed = get("/auth/passkeys", access).json()["passkeys"]
    check([p["name"] for p in listed] == ["Laptop"], "the passkey is listed")
    passkey_id = listed[0]["id"]

    answer, ceremony, credential = sign_in(device)
    check(answer.status_code == 200, f"signed in with the passkey alone ({answer.status_code} {answer.text[:200]})")
    token = claims(answer.json()["access_token"])
    check(token["acr"] == "aal2" and token["amr"] == ["hwk", "user"], "a passkey alone is aal2")
    passkey_session = answer.json()
    replay = post("/auth/passkeys/login/finish", {"challenge_id": ceremony["challenge_id"], "credential": credential})
    check(replay.status_code == 400 and replay.json()["error"] == "invalid_grant", "a sign-in ceremony is single use")

    backwards, _, _ = sign_in(device, counter=1)
    check(backwards.status_code == 401, "a signature counter that goes backwards is refused")
    unverified, _, _ = sign_in(device, flags=UP)
    check(unverified.status_code == 401, "an authenticator that did not verify its user is refused")
    elsewhere, _, _ = sign_in(device, origin="https://evil.example")
    check(elsewhere.status_code == 401, "an assertion made for another origin is refused")
    events = [e["type"] for e in get("/auth/events", passkey_session["access_token"]).json()["events"]]
    check("passkey_clone_suspected" in events and "passkey_added" in events, "the suspected clone is recorded")

    challenge = post("/auth/login", login)
    check(challenge.status_code == 403 and challenge.json()["methods"] == ["passkey", "recovery_code"], "the password alone asks for the passkey")
    mfa_token = challenge.json()["mfa_token"]
    second = post("/auth/login/mfa/passkey", {"mfa_token": mfa_token}).json()
    check(second["options"]["allowCredentials"][0]["id"] == b64(device.credential_id), "the second step names the user's passkeys")
    done = post("/auth/login/mfa", {"mfa_token": mfa_token, "passkey": {"challenge_id": second["challenge_id"], "credential": device.get(second["options"])}, "refresh_token_delivery": "body"})
    check(done.status_code == 200, f"password then passkey ({done.status_code} {done.text[:200]})")
    check(claims(done.json()["access_token"])["amr"] == ["pwd", "hwk", "user", "mfa"], "password and passkey are two factors")

    stepping = post("/auth/reauthenticate/passkey", bearer=done.json()["access_token"]).json()
    stepped = post("/auth/reauthenticate", {"passkey": {"challenge_id": stepping["challenge_id"], "credential": device.get(stepping["options"])}}, bearer=done.json()["access_token"])
    check(stepped.status_code == 200 and claims(stepped.json()["access_token"])["acr"] == "aal2", "a passkey alone steps a session up")

    removed = requests.delete(f"{AUTH_URL}/auth/passkeys/{passkey_id}", headers={"Authorization": f"Bearer {stepped.json()['access_token']}"}, timeout=TIMEOUT)
    check(removed.status_code == 204, "the passkey is removed")
    ended = post("/auth/refresh", {"refresh_token": passkey_session["refresh_token"]})
    check(ended.status_code == 401, "the session it signed in has ended")
    kept = post("/auth/refresh", {"refresh_token": done.json()["refresh_token"]})
    check(kept.status_code == 401, "and so has the one it completed as a second factor")
    gone, _, _ = sign_in(device)
    check(gone.status_code == 401, "a removed passkey signs in no more")
    check(post("/auth/login", login).status_code == 200, "with no second factor left, the password alone signs in")
    print("all checks passed")


if __name__ == "__main__":
    main()
