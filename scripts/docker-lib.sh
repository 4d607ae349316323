# shellcheck shell=bash
# Shared by scripts/docker-images.sh and scripts/compose-e2e.sh (sourced).

# step, die, timed, until_true, wait_ready, free_port.
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Debian's docker client (20.10, with BuildKit built in) ahead of any other
# on the PATH: some machines carry a newer client alone, whose builds want
# the buildx plugin. docker-compose 1.29 runs `docker build` from the PATH
# too, so it gets this one. Called again once docker.io is installed.
debian_docker_first() {
    if [ -x /usr/bin/docker ] && [ "$(command -v docker)" != /usr/bin/docker ]; then
        mkdir -p /tmp/debian-docker-client
        ln -sf /usr/bin/docker /tmp/debian-docker-client/docker
        export PATH="/tmp/debian-docker-client:$PATH"
    fi
}
debian_docker_first

# BuildKit (the Dockerfile's cache mounts need it), also for
# docker-compose 1.29, which then builds through the docker client.
export DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1
