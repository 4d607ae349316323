#!/usr/bin/env python3
"""Drives the replicas that scripts/replicas.sh starts (3 auth-server and
2 resource-api processes behind HAProxy) and checks what they share:

1. the 20-way refresh race, spread over the three auth replicas, gives
   exactly one successor;
2. a logout on one auth replica is refused at both APIs within 1 s (p50 and
   p99 over 20 trials);
3. the login limit holds as configured across the replicas;
4. a forced key rotation under continuous load refuses no valid token;
5. killing one auth replica loses no session, and no request beyond those
   in flight.

Standard library only. Exits non-zero on the first failed check.
"""

import argparse
import base64
import collections
import email.message
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

PASSWORD = "correct horse battery staple"
_client_counter = [0]
_client_lock = threading.Lock()


def fail(message):
    print(f"FAILED: {message}", flush=True)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def next_client():
    """A client address of its own (the login limit is per client): the
    proxy forwards it, the auth servers trust the proxy."""
    with _client_lock:
        _client_counter[0] += 1
        n = _client_counter[0]
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def call(method, url, body=None, token=None, client=None, timeout=10):
    """(status, headers (case-insensitive), json or None); status 0 when no
    answer came."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if client:
        request.add_header("X-Forwarded-For", client)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            return response.status, response.headers, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return error.code, error.headers, parsed
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return 0, email.message.Message(), None


def kid(token):
    header = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


def percentile(values, p):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


class Stack:
    def __init__(self, args):
        self.auth = args.auth
        self.api = args.api
        self.auth_replicas = [u for u in args.auth_replicas.split(",") if u]
        self.api_replicas = [u for u in args.api_replicas.split(",") if u]
        self.email = f"replicas-{os.getpid()}@example.com"

    def register(self):
        status, _, _ = call(
            "POST", f"{self.auth}/auth/register",
            {"email": self.email, "password": PASSWORD}, client=next_client())
        check(status == 201, f"register: {status}")

    def login(self, base=None):
        status, headers, body = call(
            "POST", f"{base or self.auth}/auth/login",
            {"email": self.email, "password": PASSWORD, "refresh_token_delivery": "body"},
            client=next_client())
        check(status == 200, f"login: {status} {body}")
        return body["access_token"], body["refresh_token"], headers.get("X-Replica")

    def refresh(self, refresh_token):
        return call("POST", f"{self.auth}/auth/refresh", {"refresh_token": refresh_token})


def refresh_race(stack):
    _, refresh_token, _ = stack.login()
    barrier = threading.Barrier(20)
    answers = [None] * 20

    def racer(i):
        barrier.wait()
        answers[i] = stack.refresh(refresh_token)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = collections.Counter(a[0] for a in answers)
    replicas = collections.Counter(a[1].get("X-Replica") for a in answers)
    successors = {a[2].get("refresh_token") for a in answers if a[0] == 200 and a[2]}
    successors.discard(None)
    print(f"  statuses {dict(statuses)}, replicas {dict(replicas)}, distinct successors {len(successors)}")
    check(statuses == {200: 20}, "every racer is answered 200 (one winner, the rest by the grace)")
    check(len(replicas) == 3, "the race is spread over the three replicas")
    check(len(successors) == 1, "exactly one successor")
    status, _, _ = stack.refresh(successors.pop())
    check(status == 200, "the successor rotates on")


def logout_propagation(stack, trials=20):
    delays = []
    logout_replica = stack.auth_replicas[-1]
    for trial in range(trials):
        access, refresh_token, _ = stack.login()
        for api in stack.api_replicas:
            deadline = time.monotonic() + 5
            while call("GET", f"{api}/api/me", token=access)[0] != 200:
                check(time.monotonic() < deadline, f"trial {trial}: {api} never accepted the token")
                time.sleep(0.01)
        refused_after = {}

        def watch(api, started):
            while time.monotonic() - started < 3:
                if call("GET", f"{api}/api/me", token=access, timeout=3)[0] == 401:
                    refused_after[api] = time.monotonic() - started
                    return
                time.sleep(0.005)

        started = time.monotonic()
        status, _, _ = call("POST", f"{logout_replica}/auth/logout", {"refresh_token": refresh_token})
        check(status == 204, f"logout: {status}")
        watchers = [threading.Thread(target=watch, args=(api, started)) for api in stack.api_replicas]
        for w in watchers:
            w.start()
        for w in watchers:
            w.join()
        check(len(refused_after) == len(stack.api_replicas),
              f"trial {trial}: not refused everywhere within 3 s: {refused_after}")
        delays.append(max(refused_after.values()))
    ms = [round(d * 1000) for d in delays]
    print(f"  logout on {logout_replica} (no API reads its feed) -> refused at both APIs after (ms): {sorted(ms)}")
    print(f"  p50 {percentile(ms, 50)} ms, p99 {percentile(ms, 99)} ms over {trials} trials")
    check(max(delays) < 1.0, "refused at both APIs within 1 s")
    return percentile(ms, 50), percentile(ms, 99)


def login_limit(stack, limit):
    count = int(limit.split("/")[0])
    client = next_client()
    outcomes = collections.Counter()
    replicas = collections.Counter()
    for _ in range(count * 3):
        status, headers, _ = call(
            "POST", f"{stack.auth}/auth/login",
            {"email": stack.email, "password": PASSWORD, "refresh_token_delivery": "body"},
            client=client)
        outcomes[status] += 1
        replicas[headers.get("X-Replica")] += 1
        if status == 429:
            check("Retry-After" in headers, "a 429 says when to retry")
    print(f"  {count * 3} logins of one client through the balancer: {dict(outcomes)}, replicas {dict(replicas)}")
    check(len(replicas) == 3, "the logins were spread over the three replicas")
    check(outcomes[200] == count, f"exactly {count} let through ({limit}), not {count} per replica")
    check(outcomes[429] == 2 * count, "the rest refused with 429")


def rotation_under_load(stack, auth_bin):
    old_access, _, _ = stack.login()
    old_kid = kid(old_access)
    sessions = [stack.login()[1] for _ in range(4)]
    stop = threading.Event()
    lock = threading.Lock()
    results = collections.Counter()
    kids_seen = collections.Counter()
    problems = []

    def worker(i):
        refresh_token = sessions[i]
        while not stop.is_set():
            status, _, body = stack.refresh(refresh_token)
            if status != 200:
                with lock:
                    problems.append(f"refresh {status}")
                return
            refresh_token = body["refresh_token"]
            access = body["access_token"]
            for token in (access, old_access):
                status, _, body = call("GET", f"{stack.api}/api/me", token=token)
                with lock:
                    results[status] += 1
                    if status != 200:
                        problems.append(f"/api/me {status} {body} for kid {kid(token)}")
            with lock:
                kids_seen[kid(access)] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(sessions))]
    for t in threads:
        t.start()
    time.sleep(1)
    rotated_at = time.monotonic()
    rotate = subprocess.run([auth_bin, "keys", "rotate"], capture_output=True, text=True)
    check(rotate.returncode == 0, f"keys rotate: {rotate.stderr}")
    print(f"  {rotate.stderr.strip()}")
    new_kid = None
    while time.monotonic() - rotated_at < 20 and not problems:
        with lock:
            fresh = [k for k in kids_seen if k != old_kid]
        if fresh and new_kid is None:
            new_kid = fresh[0]
            switched_at = time.monotonic()
        if new_kid and time.monotonic() - switched_at > 2:
            break
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join()
    print(f"  /api/me answers under load: {dict(results)}; tokens by kid: {dict(kids_seen)}")
    check(not problems, f"no valid token refused: {problems[:5]}")
    check(new_kid is not None, "the replicas signed with the new key")
    check(results[401] == 0, "zero 401s")


def kill_one_replica(stack, pid_file):
    sessions = [stack.login()[1] for _ in range(6)]
    stop = threading.Event()
    lock = threading.Lock()
    counts = collections.Counter()
    first_failures = []
    lost = []
    tokens = list(sessions)

    def worker(i):
        while not stop.is_set():
            status, _, body = stack.refresh(tokens[i])
            counts["requests"] += 1
            if status != 200:
                with lock:
                    first_failures.append(status)
                # A client whose answer was lost sends the same token again:
                # the reuse grace answers with the same successor.
                time.sleep(0.1)
                status, _, body = stack.refresh(tokens[i])
                if status != 200:
                    with lock:
                        lost.append((i, status, body))
                    return
            tokens[i] = body["refresh_token"]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(sessions))]
    for t in threads:
        t.start()
    time.sleep(1.5)
    with open(pid_file) as f:
        pid = int(f.read().strip())
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    time.sleep(3)
    stop.set()
    for t in threads:
        t.join()
    after = [stack.refresh(t)[0] for t in tokens]
    print(f"  auth3 killed (SIGKILL) under {len(sessions)} refresh loops: {counts['requests']} refreshes, "
          f"{len(first_failures)} answered other than 200 at first {first_failures}, sessions lost {len(lost)}")
    print(f"  every session refreshes afterwards: {collections.Counter(after)}")
    check(not lost, f"no session lost: {lost}")
    check(after == [200] * len(tokens), "every session lives on")
    check(len(first_failures) <= len(sessions), "no request lost beyond those in flight")
    del killed_at


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--auth", required=True)
    parser.add_argument("--api", required=True)
    parser.add_argument("--auth-replicas", required=True)
    parser.add_argument("--api-replicas", required=True)
    parser.add_argument("--login-limit", required=True)
    parser.add_argument("--auth-bin", required=True)
    parser.add_argument("--kill-pid-file", required=True)
    args = parser.parse_args()
    stack = Stack(args)
    stack.register()
    started = time.monotonic()
    steps = [
        ("the 20-way refresh race over three replicas", lambda: refresh_race(stack)),
        ("a logout on one replica, refused at both APIs", lambda: logout_propagation(stack)),
        ("the login limit across replicas", lambda: login_limit(stack, args.login_limit)),
        ("a key rotation under continuous load", lambda: rotation_under_load(stack, args.auth_bin)),
        ("one auth replica killed", lambda: kill_one_replica(stack, args.kill_pid_file)),
    ]
    for name, step in steps:
        step_started = time.monotonic()
        print(f"== {name}", flush=True)
        step()
        print(f"  ok ({time.monotonic() - step_started:.1f}s)", flush=True)
    print(f"replicas: {len(steps)} passed, 0 failed ({time.monotonic() - started:.1f}s)")


if __name__ == "__main__":
    main()
