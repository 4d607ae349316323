#!/usr/bin/env python3
"""Print a docker-compose.yml service's environment, interpolated as Compose
does (`${VAR}`, `${VAR:-default}`, `${VAR-default}`, `$$`), one NAME=VALUE
per line, NUL-separated with -0.

    compose_env.py docker-compose.yml auth-server
    compose_env.py docker-compose.yml init --command   # the init command
    compose_env.py docker-compose.yml init --volumes   # MOUNTPOINT=VOLUME lines

Used by compose-env-e2e.sh to start the binaries with exactly the compose
file's environment.
"""
import os
import re
import sys

import yaml

VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value: str) -> str:
    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        operator, default = match.group(2), match.group(3)
        current = os.environ.get(name)
        if operator == ":-" and not current:
            return default
        if operator == "-" and current is None:
            return default
        return current or ""

    return VARIABLE.sub(replace, value)


def environment(service: dict) -> dict:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, os.environ.get(item, "")) for item in env)
    return {name: interpolate(str(value)) for name, value in env.items()}


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    if len(args) != 2:
        sys.exit(__doc__)
    path, name = args
    with open(path, encoding="utf-8") as f:
        compose = yaml.safe_load(f)
    service = compose["services"][name]
    if "--volumes" in sys.argv:
        for volume in service.get("volumes") or []:
            source, target = str(volume).split(":")[:2]
            print(f"{target}={source}")
        return
    if "--command" in sys.argv:
        command = service["command"]
        print(interpolate(command if isinstance(command, str) else " ".join(command)))
        return
    end = "\0" if "-0" in sys.argv else "\n"
    for key, value in environment(service).items():
        print(f"{key}={value}", end=end)


if __name__ == "__main__":
    main()
