"""A private Docker daemon and the images the tests build with it, shared by every test module.

A ``dockerd`` of this run's own (data, sockets and pid file in a temporary
folder, no bridge network) is started once per xdist worker. Docker Hub
cannot be reached here: the base images are made from Debian's packages with
``mmdebstrap`` (one tree, with Python for the bakes' images and the Redis and
nginx that stand in for the official ``redis`` and ``nginx`` images of the
compose stacks), and each backend's bake is built once per session with its
README's ``docker build`` command. The tests that use them share the xdist
group ``docker``, so that one worker builds all of this once (pytest 9.2 with
pytest-xdist 3.8 ignores groups, pytest-dev/pytest-xdist#1386: then each
worker that runs some of them builds its own).

Without Docker the tests skip, saying how to get it; under ``CI=true`` they fail.
"""

import fcntl
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from test_installed_project import readme_command

from conftest import clean_env, run

# Every test that uses the daemon: one xdist worker starts it and builds the images.
docker_tests = pytest.mark.xdist_group("docker")

HOW_TO_GET_DOCKER = (
    "the image tests start their own dockerd as root and need Debian's docker.io "
    "and mmdebstrap: apt-get install docker.io mmdebstrap (.ci/run does)"
)
DEBIAN_IMAGE = "template-test/debian:bookworm"
PYTHON_IMAGE = "template-test/python:bookworm"
REDIS_IMAGE = "template-test/redis"
NGINX_IMAGE = "template-test/nginx"
# Debian's packages in the one tree every base image is made from.
DEBIAN_PACKAGES = (
    "python3,python3-venv,python-is-python3,ca-certificates,redis-server,nginx,gettext-base"
)
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# What an image made by `docker import` lacks, and official images set.
IMPORTED_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Docker:
    """The ``docker`` CLI, talking to one daemon, with a config folder of its own."""

    def __init__(self, socket, config):
        self.env = clean_env(DOCKER_HOST=f"unix://{socket}", DOCKER_CONFIG=str(config))
        for name in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
            self.env.pop(name, None)

    def __call__(self, *args, cwd=None, timeout=120, check=True):
        return run(
            ["docker", *map(str, args)],
            cwd or Path.cwd(),
            env=self.env,
            timeout=timeout,
            check=check,
        )

    def inspect(self, name, template):
        return self("inspect", "--format", template, name).stdout.strip()


def docker_missing():
    """Why this machine cannot run the tests, or None."""
    if os.geteuid() != 0:
        return "not root"
    missing = [tool for tool in ("docker", "dockerd", "mmdebstrap") if shutil.which(tool) is None]
    return f"no {', '.join(missing)} on PATH" if missing else None


@pytest.fixture(scope="session")
def docker(tmp_path_factory):
    """A private dockerd for this run, stopped by its pid at the end, its folder removed."""
    why = docker_missing()
    if why:
        message = f"{why}: {HOW_TO_GET_DOCKER}"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    # A short path: containerd's sockets live under the exec root.
    root = Path(tempfile.mkdtemp(prefix="dockerd-"))
    log = root / "dockerd.log"
    with log.open("wb") as output:
        daemon = subprocess.Popen(
            [
                "dockerd",
                *("--data-root", root / "data", "--exec-root", root / "exec"),
                *("-H", f"unix://{root / 'docker.sock'}", "--pidfile", root / "dockerd.pid"),
                *("--bridge=none", "--iptables=false", "--ip-masq=false"),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    client = Docker(root / "docker.sock", tmp_path_factory.mktemp("docker-config"))
    try:
        deadline = time.monotonic() + 60
        while client("version", check=False, timeout=30).returncode != 0:
            if daemon.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dockerd did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.2)
        yield client
    finally:
        if daemon.poll() is None:
            left = client("ps", "--all", "--quiet", check=False).stdout.split()
            if left and all(re.fullmatch(r"[0-9a-f]{12,64}", name) for name in left):
                client("rm", "--force", *left, check=False)
            daemon.terminate()
            try:
                daemon.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
                daemon.wait(10)
        # dockerd leaves its network namespace mounted: nothing of it may stay
        # mounted when its folder goes.
        for mount in reversed(mounts_under(root)):
            subprocess.run(["umount", mount], check=False)
        if not mounts_under(root):
            shutil.rmtree(root, ignore_errors=True)


def mounts_under(root):
    """The mount points under ``root``, outermost first."""
    points = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    return [point for point in points if point.startswith(f"{root}/")]


@pytest.fixture(scope="session")
def debian_image(docker, tmp_path_factory):
    """Debian's minimal tree with Python, Redis and nginx, as an image."""
    docker(
        "import",
        "--change",
        f"ENV PATH={IMPORTED_PATH}",
        debian_tarball(tmp_path_factory),
        DEBIAN_IMAGE,
    )
    return DEBIAN_IMAGE


@pytest.fixture(scope="session")
def python_image(docker, debian_image, tmp_path_factory):
    """A Python base image from Debian's packages, trusting this machine's CA bundle.

    PyPI is reached through a proxy whose certificate authority is in the
    host's bundle: the image takes that bundle, and pip is told to use it.
    """
    folder = tmp_path_factory.mktemp("python-image")
    shutil.copy(HOST_CA_BUNDLE, folder / "ca-certificates.crt")
    (folder / "Dockerfile").write_text(
        f"FROM {debian_image}\n"
        f"COPY ca-certificates.crt {HOST_CA_BUNDLE}\n"
        f"ENV PIP_CERT={HOST_CA_BUNDLE}\n",
        encoding="utf-8",
    )
    docker("build", "--tag", PYTHON_IMAGE, folder)
    return PYTHON_IMAGE


@pytest.fixture(scope="session")
def redis_image(docker, debian_image, tmp_path_factory):
    """Stands in for the official ``redis``: ``redis-server`` in ``/data``, and ``redis-cli``."""
    folder = tmp_path_factory.mktemp("redis-image")
    (folder / "Dockerfile").write_text(
        f'FROM {debian_image}\nWORKDIR /data\nCMD ["redis-server"]\n', encoding="utf-8"
    )
    docker("build", "--tag", REDIS_IMAGE, folder)
    return REDIS_IMAGE


# The official nginx image's docker-entrypoint.d/20-envsubst-on-templates.sh,
# in short: each /etc/nginx/templates/*.template, its environment variables
# filled in (only those defined, and matching NGINX_ENVSUBST_FILTER), becomes
# a file of /etc/nginx/conf.d/.
NGINX_ENTRYPOINT = r"""#!/bin/sh
set -eu
filter="${NGINX_ENVSUBST_FILTER:-}"
names=$(awk "END { for (name in ENVIRON) if (name ~ /${filter}/) print name }" </dev/null)
defined_envs=$(printf '${%s} ' $names)
for template in /etc/nginx/templates/*.template; do
    [ -f "$template" ] || continue
    output="/etc/nginx/conf.d/$(basename "$template" .template)"
    envsubst "$defined_envs" < "$template" > "$output"
    echo "$0: wrote $output from $template"
done
exec "$@"
"""


@pytest.fixture(scope="session")
def nginx_image(docker, debian_image, tmp_path_factory):
    """Stands in for the official ``nginx``: templates filled in from the environment."""
    folder = tmp_path_factory.mktemp("nginx-image")
    (folder / "docker-entrypoint.sh").write_text(NGINX_ENTRYPOINT, encoding="utf-8")
    (folder / "docker-entrypoint.sh").chmod(0o755)
    (folder / "Dockerfile").write_text(
        f"FROM {debian_image}\n"
        # Debian's own site would listen on port 80 of the host's network.
        "RUN rm /etc/nginx/sites-enabled/default && mkdir -p /etc/nginx/templates"
        " && ln -sf /dev/stdout /var/log/nginx/access.log"
        " && ln -sf /dev/stderr /var/log/nginx/error.log\n"
        "COPY docker-entrypoint.sh /\n"
        'ENTRYPOINT ["/docker-entrypoint.sh"]\n'
        "STOPSIGNAL SIGQUIT\n"
        'CMD ["nginx", "-g", "daemon off;"]\n',
        encoding="utf-8",
    )
    docker("build", "--tag", NGINX_IMAGE, folder)
    return NGINX_IMAGE


def debian_tarball(tmp_path_factory):
    """Debian's minimal tree with Python, Redis and nginx: made once per run, for every worker."""
    basetemp = tmp_path_factory.getbasetemp()
    # Under xdist, the parent of the base temp belongs to this run alone.
    shared = basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp
    tarball = shared / "debian-bookworm.tar"
    with (shared / "debian-bookworm.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not tarball.exists():
            partial = tarball.with_suffix(".partial.tar")
            run(
                [
                    "mmdebstrap",
                    "--variant=minbase",
                    f"--include={DEBIAN_PACKAGES}",
                    "bookworm",
                    str(partial),
                ],
                shared,
                timeout=600,
            )
            partial.rename(tarball)
    return tarball


def readme_build(docker, project, python_image):
    """The README's ``docker build``, on ``python_image``, with the host's network: the tag."""
    tokens = shlex.split(readme_command(project, r"^docker build\b", "docker build"))
    assert tokens[:2] == ["docker", "build"], tokens
    docker(
        "build",
        *("--network", "host", "--build-arg", f"PYTHON_IMAGE={python_image}"),
        *tokens[2:],
        cwd=project,
        timeout=900,
    )
    return tokens[tokens.index("-t") + 1]


@pytest.fixture(scope="session")
def threads_image(bake, docker, python_image):
    """The default REST layer on threads: its project folder and its image."""
    project = bake(task_backend="threads")
    return project, readme_build(docker, project, python_image)


@pytest.fixture(scope="session")
def celery_image(bake, docker, python_image):
    """flask-smorest on celery, under a slug of its own: its project folder and its image."""
    project = bake(
        project_name="Docker Celery Service", rest_layer="flask-smorest", task_backend="celery"
    )
    return project, readme_build(docker, project, python_image)
