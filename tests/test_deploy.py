"""The production deployment (deploy/), verified as far as a machine without a Docker engine allows.

Static, against Dagster's own loaders: deploy/dagster.yaml through Dagster's instance-config
validation, deploy/workspace.yaml through the workspace loader, the DockerRunLauncher built from the
config (no Docker daemon is needed to construct it), docker-compose.yml and the Dockerfile parsed
and cross-checked (commands, ports on 127.0.0.1, no literal secrets, names that must agree).

Live, on a real Postgres 16 (the `pgserver` wheel's binaries, started in a temp dir):
- `dagster instance migrate` (the CLI, on the unmodified production dagster.yaml) creates the schema;
- one day of `marketing/raw_ads` + `cleansed_ads` is materialized in process against the
  Postgres-backed instance (run launcher swapped for the default one: no Docker here), and the run,
  its materializations and check evaluations are read back from Postgres;
- the code server is started with the exact command of docker-compose.yml, the workspace is
  deploy/workspace.yaml (host and port pointed at it), deploy/launch_backfill.py's mutation goes
  through Dagster's GraphQL layer, and the daemon's backfill and run-queue iterations launch the run
  through the real DockerRunLauncher. A small HTTP stand-in for the Docker Engine API records the
  container it asks for; the test then plays the container: it runs that container's command, with
  that container's environment, and the run succeeds against Postgres.

What stays unverified: building the image, compose itself, the Docker engine, volume mounts.
"""

from __future__ import annotations

import contextlib
import http.server
import importlib.util
import json
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import dagster as dg
import psycopg2
import pytest
import sqlalchemy
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.instance.ref import InstanceRef
from dagster._core.remote_origin import GrpcServerCodeLocationOrigin
from dagster._core.storage.config import pg_config
from dagster._core.workspace.load import location_origins_from_yaml_paths
from dagster._grpc.client import DagsterGrpcClient
from dagster._serdes import serialize_value
from dagster_docker import DockerRunLauncher
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage
from dagster_postgres.utils import get_conn_string
from dagster_processes import PROJECT_ROOT, VENV_BIN, free_port, start_process, stop_all, wait_until

pytestmark = pytest.mark.xdist_group(name="deploy")

DEPLOY = PROJECT_ROOT / "deploy"
SERVICES = {"postgres", "intelligence-code", "dagster-webserver", "dagster-daemon"}
CODE_SERVICE = "intelligence-code"
LOCATION = "intelligence"
CONTAINER_APP = "/opt/dagster/app"
CONTAINER_DAGSTER_HOME = "/opt/dagster/dagster_home"
CONTAINER_DATA = "/var/lib/intelligence"
SECRET_WORDS = re.compile(r"PASSWORD|SECRET|TOKEN|WEBHOOK|CREDENTIAL", re.IGNORECASE)
DEFAULT_LAUNCHER = {"module": "dagster", "class": "DefaultRunLauncher"}
CODE_SERVER_IMAGE = "registry.example/orchestrated-intelligence:from-code-server"
FALLBACK_IMAGE = "registry.example/orchestrated-intelligence:fallback"
PG_PASSWORD = "dummy-pg-password-7f3a"  # the test Postgres trusts local connections: this value only travels
DUMMY_ENV = {
    "DAGSTER_PG_HOST": "postgres",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": PG_PASSWORD,
    "DAGSTER_PG_DB": "dagster",
    "INTELLIGENCE_IMAGE": FALLBACK_IMAGE,
    "INTELLIGENCE_START_DATE": "2024-01-01",
    "INTELLIGENCE_REPORT_TIMEZONE": "UTC",
    "INTELLIGENCE_ALERT_WEBHOOK": "",
}
ADS = ["marketing", "raw_ads"], ["marketing", "cleansed_ads"], ["marketing", "cleansed_ads_quarantine"]
IN_PROCESS_DAY = "2024-01-05"
BACKFILL_DAYS = ("2024-01-06", "2024-01-07")
STARTUP_TIMEOUT = 120
RUN_TIMEOUT = 180


def _landing_csv(day: str, prefix: str) -> str:
    """Five clicks; the fourth breaks the contract (negative cost) and must be quarantined."""
    return (
        "click_id,cookie_id,campaign,channel,cost,ts\n"
        f"{prefix}1,k1,Winter,paid_search,0.50,{day}T08:00:00Z\n"
        f"{prefix}2,k2,winter,Paid Search,0.75,{day}T09:30:00Z\n"
        f"{prefix}3,k3,spring,display,0.20,{day}T10:00:00Z\n"
        f"{prefix}4,k4,spring,video,-1.00,{day}T11:00:00Z\n"
        f"{prefix}5,k5,spring,display,0.30,{day}T12:00:00Z\n"
    )


# -- reading deploy/ ---------------------------------------------------------------------------------


def _yaml(name: str) -> Any:
    return yaml.safe_load((DEPLOY / name).read_text())


def _env_example() -> dict[str, str]:
    pairs = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


_COMPOSE_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable interpolation (`${X}`, `${X:-default}`, `${X-default}`, `${X:?error}`, `$$`)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        current = env.get(name)
        if op == ":-":
            return current or arg
        if op == "-":
            return arg if current is None else current
        if op in (":?", "?") and (current is None or (op == ":?" and not current)):
            raise ValueError(f"compose refuses to start: {name}: {arg}")
        return current or ""

    return _COMPOSE_VAR.sub(substitute, value.replace("$$", "\0")).replace("\0", "$")


def _compose_env() -> dict[str, str]:
    """What an operator's deploy/.env holds after following .env.example (a password filled in)."""
    return {**_env_example(), "DAGSTER_PG_PASSWORD": PG_PASSWORD}


def _service_env(service: Mapping[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {k: str(v) for k, v in environment.items()}


def _dockerignore() -> list[str]:
    lines = (line.strip() for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _dockerfile() -> str:
    return (DEPLOY / "Dockerfile").read_text()


def _dockerfile_instruction(name: str) -> list[str]:
    """The arguments of each `name` instruction, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", _dockerfile())
    return [line.split(None, 1)[1].strip() for line in text.splitlines() if line.startswith(f"{name} ")]


def _env_refs(value: Any) -> set[str]:
    """Every `env:` variable a Dagster config mapping refers to."""
    if isinstance(value, dict):
        if set(value) == {"env"}:
            return {value["env"]}
        return set().union(*(_env_refs(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_env_refs(v) for v in value)) if value else set()
    return set()


@pytest.fixture
def dummy_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key, value in DUMMY_ENV.items():
        monkeypatch.setenv(key, value)
    # Constructing the launcher must not need a Docker engine: point the client at nothing.
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    return DUMMY_ENV


# -- deploy/dagster.yaml -----------------------------------------------------------------------------


def test_instance_config_validates_with_postgres_docker_launcher_and_local_policies(dummy_env: dict) -> None:
    """deploy/dagster.yaml passes Dagster's own instance-config validation and says what it must."""
    validated, custom_class = dagster_instance_config(str(DEPLOY))
    assert custom_class is None
    raw = _yaml("dagster.yaml")

    # Postgres holds runs, event logs and schedules; every connection field comes from the environment.
    postgres = validated["storage"]["postgres"]["postgres_db"]
    assert {k: v for k, v in raw["storage"]["postgres"]["postgres_db"].items() if k != "scheme"} == {
        "hostname": {"env": "DAGSTER_PG_HOST"},
        "port": {"env": "DAGSTER_PG_PORT"},
        "username": {"env": "DAGSTER_PG_USER"},
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "db_name": {"env": "DAGSTER_PG_DB"},
    }
    # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which dagster-postgres does not install:
    # the config names the driver it does install.
    assert sqlalchemy.engine.make_url("postgresql://u@h/d").get_dialect().driver == "psycopg"
    assert postgres["scheme"] == "postgresql+psycopg2" and importlib.util.find_spec("psycopg2") is not None
    resolved = process_config(pg_config(), raw["storage"]["postgres"])
    assert resolved.success, resolved.errors
    url = sqlalchemy.engine.make_url(get_conn_string(**resolved.value["postgres_db"]))
    assert (url.drivername, url.host, url.port, url.username, url.password, url.database) == (
        "postgresql+psycopg2",
        "postgres",
        5432,
        "dagster",
        PG_PASSWORD,
        "dagster",
    )

    assert validated["run_coordinator"] == {"module": "dagster", "class": "QueuedRunCoordinator"}
    assert (validated["run_launcher"]["module"], validated["run_launcher"]["class"]) == (
        "dagster_docker",
        "DockerRunLauncher",
    )
    assert validated["concurrency"]["pools"]["default_limit"] == 1  # the `duckdb` pool: one writer
    assert validated["run_monitoring"]["enabled"] is True
    assert validated["run_retries"]["enabled"] is True and validated["run_retries"]["max_retries"] >= 1
    assert validated["telemetry"] == {"enabled": False}
    # Dagster rejects run limits in both places (STACK-FACTS): they live under `concurrency.runs`.
    assert "run_queue" not in raw and "max_concurrent_runs" not in (raw["run_coordinator"].get("config") or {})

    # The same queue, pool, monitoring, retry and daemon policies as the local instance.
    local = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    for section in ("concurrency", "run_monitoring", "run_retries", "telemetry", "sensors", "schedules"):
        assert raw[section] == local[section], section


def test_instance_config_fails_loudly_when_a_credential_is_missing(
    dummy_env: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGSTER_PG_PASSWORD")
    resolved = process_config(pg_config(), _yaml("dagster.yaml")["storage"]["postgres"])
    assert not resolved.success
    assert "DAGSTER_PG_PASSWORD" in str(resolved.errors)


def test_docker_run_launcher_is_built_from_the_config_without_a_docker_engine(dummy_env: dict, tmp_path: Path) -> None:
    """The launcher the daemon will use, built as the instance builds it; Docker is contacted only at launch."""
    ref = InstanceRef.from_dir(str(tmp_path), config_dir=str(DEPLOY))
    launcher = ref.run_launcher_data.rehydrate(DockerRunLauncher)
    assert isinstance(launcher, DockerRunLauncher)
    assert launcher.image == FALLBACK_IMAGE
    compose = _yaml("docker-compose.yml")
    assert launcher.networks == [compose["networks"]["intelligence"]["name"]]
    # Run containers mount the same named volumes as the compose services, at the same paths.
    volumes = {name: spec["name"] for name, spec in compose["volumes"].items()}
    assert sorted(launcher.container_kwargs["volumes"]) == sorted(
        [
            f"{volumes['intelligence_data']}:{CONTAINER_DATA}",
            f"{volumes['dagster_storage']}:{CONTAINER_DAGSTER_HOME}/storage",
        ]
    )
    code_mounts = compose["services"][CODE_SERVICE]["volumes"]
    assert f"intelligence_data:{CONTAINER_DATA}" in code_mounts
    assert f"ENV_INTELLIGENCE_HOME={CONTAINER_DATA}" in _image_env_lines()
    # Names only in the config; the values travel from the daemon's environment into the container.
    assert set(launcher.env_vars) >= {
        "DAGSTER_PG_HOST",
        "DAGSTER_PG_PORT",
        "DAGSTER_PG_USER",
        "DAGSTER_PG_PASSWORD",
        "DAGSTER_PG_DB",
        "INTELLIGENCE_START_DATE",
    }
    assert all("=" not in name for name in launcher.env_vars)
    # The instance ref goes onto every run container's command line: it carries env references only.
    serialized = serialize_value(ref)
    assert PG_PASSWORD not in serialized and "DAGSTER_PG_PASSWORD" in serialized


def _image_env_lines() -> set[str]:
    """`ENV_<name>=<value>` for each variable the Dockerfile's ENV instructions set."""
    out = set()
    for args in _dockerfile_instruction("ENV"):
        for name, value in re.findall(r"([A-Z_]+)=(\S+)", args):
            out.add(f"ENV_{name}={value}")
    return out


# -- deploy/workspace.yaml ---------------------------------------------------------------------------


def test_workspace_points_at_the_code_server_service() -> None:
    origins = location_origins_from_yaml_paths([str(DEPLOY / "workspace.yaml")])
    assert len(origins) == 1
    origin = origins[0]
    assert isinstance(origin, GrpcServerCodeLocationOrigin)
    command = _yaml("docker-compose.yml")["services"][CODE_SERVICE]["command"]
    assert origin.location_name == LOCATION == _option(command, "--location-name")
    assert origin.host == CODE_SERVICE
    assert origin.port == int(_option(command, "--port"))


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


# -- deploy/docker-compose.yml, .env.example, Dockerfile ----------------------------------------------


def test_compose_services_and_their_commands() -> None:
    compose = _yaml("docker-compose.yml")
    services = compose["services"]
    assert set(services) == SERVICES

    code = services[CODE_SERVICE]["command"]
    assert code[:3] == ["dagster", "code-server", "start"]
    assert _option(code, "--module-name") == "intelligence.definitions"
    assert _option(code, "--working-directory") == CONTAINER_APP
    assert _option(code, "--host") == "0.0.0.0"
    # The image's default command is the same code server.
    assert json.loads(_dockerfile_instruction("CMD")[-1]) == code
    assert (
        services[CODE_SERVICE]["environment"]["DAGSTER_CURRENT_IMAGE"]
        == "${INTELLIGENCE_IMAGE:-orchestrated-intelligence:latest}"
    )

    workspace = f"{CONTAINER_DAGSTER_HOME}/workspace.yaml"
    web = services["dagster-webserver"]["command"]
    assert web[0] == "dagster-webserver"
    assert (_option(web, "--host"), _option(web, "--port"), _option(web, "--workspace")) == (
        "0.0.0.0",
        "3000",
        workspace,
    )
    daemon = services["dagster-daemon"]["command"]
    assert daemon[:2] == ["dagster-daemon", "run"] and _option(daemon, "--workspace") == workspace

    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        if name != "postgres":
            assert service["image"] == services[CODE_SERVICE]["image"], name  # one image for all
            assert service["depends_on"]["postgres"]["condition"] == "service_healthy", name
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "postgres_data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert services[CODE_SERVICE]["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}


def test_compose_publishes_only_the_webserver_and_only_on_loopback() -> None:
    services = _yaml("docker-compose.yml")["services"]
    for env in (_compose_env(), {"DAGSTER_PG_PASSWORD": PG_PASSWORD}):  # .env.example, and no .env at all
        published = {name: interpolate(s.get("ports", []), env) for name, s in services.items() if s.get("ports")}
        assert list(published) == ["dagster-webserver"]
        for port in published["dagster-webserver"]:
            host_ip, _, container_port = str(port).split(":")
            assert (host_ip, container_port) == ("127.0.0.1", "3000"), port


def test_compose_has_no_literal_secrets_and_refuses_to_start_without_a_password() -> None:
    compose = _yaml("docker-compose.yml")
    raw = (DEPLOY / "docker-compose.yml").read_text()
    anchors = {k: v for k, v in compose.items() if k.startswith("x-")}
    for name, service in [*compose["services"].items(), *anchors.items()]:
        env = _service_env(service) if name in compose["services"] else {k: str(v) for k, v in service.items()}
        for key, value in env.items():
            if SECRET_WORDS.search(key):
                assert re.fullmatch(r"\$\{[A-Z_]+(:?[-?][^}]*)?\}", value), f"{name}.{key} is a literal: {value!r}"
                assert not re.search(r":-.+\}", value), f"{name}.{key} has a default value: {value!r}"
    # The example file carries no secret values, and the real .env never reaches git or the image.
    example = _env_example()
    assert all(not value for key, value in example.items() if SECRET_WORDS.search(key)), example
    assert ".env" in (DEPLOY / ".gitignore").read_text().split()
    ignore = _dockerignore()
    assert ignore[0] == "**" and not any(".env" in pattern for pattern in ignore)  # all out, then a list back in
    for path in ("Dockerfile", "dagster.yaml", "workspace.yaml"):
        assert PG_PASSWORD not in (DEPLOY / path).read_text()
    assert PG_PASSWORD not in raw
    # An empty password (as in .env.example) stops compose before anything starts.
    with pytest.raises(ValueError, match="DAGSTER_PG_PASSWORD"):
        interpolate(compose["services"]["postgres"]["environment"], _env_example())


def test_only_the_daemon_gets_the_docker_socket() -> None:
    services = _yaml("docker-compose.yml")["services"]
    with_socket = {n for n, s in services.items() if any("docker.sock" in v for v in s.get("volumes", []))}
    assert with_socket == {"dagster-daemon"}
    assert services["dagster-daemon"]["group_add"] == ["${DOCKER_GID:-999}"]
    assert not any(
        "docker.sock" in v for v in _yaml("dagster.yaml")["run_launcher"]["config"]["container_kwargs"]["volumes"]
    )


def test_every_variable_dagster_reads_is_set_where_it_is_read() -> None:
    """Each `env:` of dagster.yaml in every Dagster service, each launcher env var in the daemon."""
    compose = _yaml("docker-compose.yml")
    config = _yaml("dagster.yaml")
    refs = _env_refs(config)
    assert refs >= {"DAGSTER_PG_HOST", "DAGSTER_PG_PASSWORD", "INTELLIGENCE_IMAGE"}
    for name in SERVICES - {"postgres"}:
        env = interpolate(_service_env(compose["services"][name]), _compose_env())
        assert refs <= set(env), f"{name} lacks {refs - set(env)}"
        assert env["DAGSTER_PG_PASSWORD"] == PG_PASSWORD and env["DAGSTER_PG_HOST"] == "postgres"
    daemon = interpolate(_service_env(compose["services"]["dagster-daemon"]), _compose_env())
    assert set(config["run_launcher"]["config"]["env_vars"]) <= set(daemon)
    postgres = interpolate(compose["services"]["postgres"]["environment"], _compose_env())
    assert (postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"]) == (
        daemon["DAGSTER_PG_USER"],
        daemon["DAGSTER_PG_PASSWORD"],
        daemon["DAGSTER_PG_DB"],
    )


def test_dockerfile_builds_a_slim_pinned_non_root_image_with_a_healthcheck() -> None:
    text = _dockerfile()
    assert _dockerfile_instruction("FROM") == ["python:3.11-slim-bookworm"]
    assert "pip install -c constraints.txt -r /tmp/requirements.txt" in text
    assert "pip install --no-deps -c constraints.txt ." in text
    users = _dockerfile_instruction("USER")
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert "grpc-health-check" in _dockerfile_instruction("HEALTHCHECK")[-1]
    assert {
        f"ENV_DAGSTER_HOME={CONTAINER_DAGSTER_HOME}",
        f"ENV_INTELLIGENCE_HOME={CONTAINER_DATA}",
    } <= _image_env_lines()
    assert f"COPY deploy/dagster.yaml deploy/workspace.yaml {CONTAINER_DAGSTER_HOME}/" in text
    # Every file the image copies in is let through the build context's ignore file.
    allowed = {line[1:] for line in _dockerignore() if line.startswith("!")}
    for args in _dockerfile_instruction("COPY"):
        for source in args.split()[:-1]:
            assert source in allowed or f"{source}/**" in allowed, source


# -- live: a real Postgres -----------------------------------------------------------------------------


@dataclass
class Postgres:
    """A throwaway Postgres server from the pgserver wheel's binaries, on 127.0.0.1 (trust auth)."""

    root: Path
    bin: Path
    port: int
    user: str = "dagster"
    db: str = "intelligence"
    run_as: dict[str, Any] = field(default_factory=dict)

    def ctl(self, *args: str) -> None:
        subprocess.run(
            [str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), *args],
            check=True,
            capture_output=True,
            cwd=self.root,
            timeout=60,
            **self.run_as,
        )

    def kill_if_running(self) -> None:
        """Make sure the postmaster we started is gone, even if `pg_ctl stop` failed."""
        data = self.root / "data"
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((data / "postmaster.pid").read_text().split()[0])
            if str(data).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():  # ours, not a reused pid
                os.kill(pid, signal.SIGKILL)

    def connect(self, db: str | None = None) -> Any:
        return psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname=db or self.db)


def _postgres_binaries(root: Path) -> Path:
    """pgserver's PostgreSQL binaries. Fails (never skips) when the wheel is missing."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("the pgserver wheel is not installed: it is a dev dependency (pip install -e '.[dev]')")
    package = Path(next(iter(spec.submodule_search_locations)))
    if os.geteuid() != 0:
        return package / "pginstall" / "bin"
    # As root the server runs as `nobody`, who may not traverse the venv's folders: copy the binaries
    # (with the libraries they find relative to themselves) into a folder anyone can read.
    copy = root / "pgserver" / "pginstall"
    for part in ("bin", "lib", "share"):
        shutil.copytree(package / "pginstall" / part, copy / part)
    shutil.copytree(package.parent / "pgserver.libs", root / "pgserver.libs")
    return copy / "bin"


@contextlib.contextmanager
def running_postgres(port: int) -> Iterator[Postgres]:
    root = Path(tempfile.mkdtemp(prefix="intelligence-pg-"))
    root.chmod(0o755)
    run_as: dict[str, Any] = {}
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        nobody = pwd.getpwnam("nobody")
        run_as = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    server: Postgres | None = None
    try:
        binaries = _postgres_binaries(root)
        data = root / "data"
        data.mkdir(mode=0o700)
        if run_as:
            os.chown(data, run_as["user"], run_as["group"])
        initdb = [str(binaries / "initdb"), "-D", str(data), "-U", "dagster", "--auth=trust", "-E", "UTF8"]
        subprocess.run(
            [*initdb, "--locale=C", "--no-sync", "--no-instructions"],
            check=True,
            capture_output=True,
            cwd=root,
            timeout=120,
            **run_as,
        )
        server = Postgres(root=root, bin=binaries, port=port, run_as=run_as)
        options = f"-h 127.0.0.1 -p {server.port} -k {data} -F -c max_connections=200"
        server.ctl("-w", "-t", "60", "-l", str(data / "postgres.log"), "-o", options, "start")
        admin = server.connect("postgres")
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f"create database {server.db}")
        admin.close()
        yield server
    except subprocess.CalledProcessError as exc:
        log = root / "data" / "postgres.log"
        pytest.fail(
            f"Postgres did not start: {exc}\n{exc.stderr!r}\n{log.read_text() if log.exists() else ''}", pytrace=False
        )
    finally:
        if server is not None:
            with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
                server.ctl("-m", "immediate", "-w", "stop")
            server.kill_if_running()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Deployment:
    """Postgres, a DAGSTER_HOME holding deploy/dagster.yaml, a data folder with landing files."""

    postgres: Postgres
    root: Path
    dagster_home: Path
    intelligence_home: Path
    process_env: dict[str, str]  # what the containers' processes see (plus the image's ENV)

    def instance(self, run_launcher: Mapping[str, str] | None = None) -> dg.DagsterInstance:
        overrides = {"run_launcher": dict(run_launcher)} if run_launcher else None
        return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(self.dagster_home), overrides=overrides))


def _code_server_command(port: int) -> list[str]:
    """docker-compose.yml's code-server command, bound to loopback on `port`, the project as the app."""
    command = _yaml("docker-compose.yml")["services"][CODE_SERVICE]["command"]
    swap = {"0.0.0.0": "127.0.0.1", _option(command, "--port"): str(port), CONTAINER_APP: str(PROJECT_ROOT)}
    return [str(VENV_BIN / command[0]), *(swap.get(arg, arg) for arg in command[1:])]


# Each live test asks only for what it needs: `--dist loadgroup` does not keep a module on one worker
# with pytest 9.2 (pytest-dev/pytest-xdist#1386), so a module fixture may be built once per worker.
@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("deploy")
    intelligence_home = root / "intelligence_home"
    for day, prefix in ((IN_PROCESS_DAY, "a"), (BACKFILL_DAYS[0], "b"), (BACKFILL_DAYS[1], "c")):
        landing = intelligence_home / "landing" / "ads" / day
        landing.mkdir(parents=True)
        (landing / f"ads_{day}_01.csv").write_text(_landing_csv(day, prefix))
    dagster_home = root / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", dagster_home / "dagster.yaml")
    pg_port = free_port()
    env = {
        **DUMMY_ENV,
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": str(pg_port),
        "DAGSTER_PG_DB": "intelligence",
    }
    process_env = {**os.environ, **env, "DAGSTER_HOME": str(dagster_home), "INTELLIGENCE_HOME": str(intelligence_home)}
    mp = pytest.MonkeyPatch()
    for key, value in {**env, "INTELLIGENCE_HOME": str(intelligence_home)}.items():
        mp.setenv(key, value)
    mp.delenv("DAGSTER_HOME", raising=False)
    try:
        with running_postgres(pg_port) as postgres:
            assert postgres.db == env["DAGSTER_PG_DB"]
            yield Deployment(postgres, root, dagster_home, intelligence_home, process_env)
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def workspace_file(deployment: Deployment) -> Iterator[Path]:
    """The schema migrated by the CLI; the code server started with docker-compose.yml's command and
    deploy/workspace.yaml pointed at it."""
    port = free_port()
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    workspace["load_from"][0]["grpc_server"].update(host="127.0.0.1", port=port)
    path = deployment.root / "workspace.yaml"
    path.write_text(yaml.safe_dump(workspace))
    env = {**deployment.process_env, "DAGSTER_CURRENT_IMAGE": CODE_SERVER_IMAGE}
    code_server = start_process("code-server", _code_server_command(port), env, deployment.root / "logs")
    try:
        # While it loads: the upgrade step of the README, on the production config as it is
        # (DockerRunLauncher and all). It creates the schema, or finds it current.
        migrate = subprocess.run(
            [str(VENV_BIN / "dagster"), "instance", "migrate"],
            env=deployment.process_env,
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT,
            cwd=deployment.root,
        )
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        wait_until(
            lambda: _serving(port),
            timeout=STARTUP_TIMEOUT,
            what="the code server (gRPC health)",
            processes=[code_server],
        )
        yield path
    finally:
        # `dagster code-server start` ignores SIGTERM while it serves: no point waiting long.
        stop_all([code_server], grace_seconds=1)


def _serving(port: int) -> bool:
    """The code server answers its gRPC health check (asked only once the port accepts connections)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return bool(DagsterGrpcClient(port=port, host="127.0.0.1").health_check_query() == "SERVING")


def _ads_assets() -> tuple[list[dg.AssetsDefinition], dg.AssetSelection]:
    from intelligence.definitions import defs

    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    return assets, dg.AssetSelection.assets(*ADS)


def test_postgres_instance_materializes_and_reads_back(deployment: Deployment) -> None:
    """One day of ads, in process, on the Postgres-backed instance; read back from Postgres."""
    from intelligence.resources import build_resources

    assets, selection = _ads_assets()
    with deployment.instance(run_launcher=DEFAULT_LAUNCHER) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        result = dg.materialize(
            assets, selection=selection, instance=instance, resources=build_resources(), partition_key=IN_PROCESS_DAY
        )
        assert result.success
        run_id = result.run_id

    # A fresh instance (new connections) sees the run, the materializations and the check results.
    with deployment.instance(run_launcher=DEFAULT_LAUNCHER) as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        rows = {}
        for path in ADS:
            records = instance.fetch_materializations(dg.AssetKey(path), limit=10).records
            ours = [r for r in records if r.run_id == run_id]
            assert len(ours) == 1 and ours[0].partition_key == IN_PROCESS_DAY, path
            rows["/".join(path)] = ours[0].asset_materialization.metadata["dagster/row_count"].value
        assert rows == {"marketing/raw_ads": 5, "marketing/cleansed_ads": 4, "marketing/cleansed_ads_quarantine": 1}
        check = instance.get_latest_asset_check_evaluation_record(
            dg.AssetCheckKey(dg.AssetKey(ADS[1]), "rule_cost_min")
        )
        assert check is not None and check.run_id == run_id
        assert check.event is not None and check.event.dagster_event is not None
        evaluation = check.event.dagster_event.event_specific_data
        assert evaluation.passed is False and evaluation.severity == dg.AssetCheckSeverity.WARN

    # And straight from Postgres, so nothing could have come from a local file.
    with contextlib.closing(deployment.postgres.connect()) as connection, connection.cursor() as cursor:
        cursor.execute("select status from runs where run_id = %s", (run_id,))
        assert cursor.fetchall() == [("SUCCESS",)]
        cursor.execute(
            "select dagster_event_type, count(*) from event_logs where run_id = %s and dagster_event_type in "
            "('ASSET_MATERIALIZATION', 'ASSET_CHECK_EVALUATION') group by 1",
            (run_id,),
        )
        counts = dict(cursor.fetchall())
        assert counts["ASSET_MATERIALIZATION"] == 3 and counts["ASSET_CHECK_EVALUATION"] >= 4, counts
        cursor.execute("select count(*) from asset_check_executions where run_id = %s", (run_id,))
        assert cursor.fetchone()[0] >= 4


# -- live: a backfill from the CLI, launched by the DockerRunLauncher ------------------------------------


class _DockerEngineStandIn(http.server.BaseHTTPRequestHandler):
    """The four Docker Engine API calls DockerRunLauncher.launch_run makes, recorded, nothing run."""

    calls: list[tuple[str, str, Any]]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.calls.append(("GET", self.path, None))
        if self.path.endswith("/version"):
            self._reply(200, {"ApiVersion": "1.44", "MinAPIVersion": "1.24", "Version": "stand-in"})
        elif re.search(r"/containers/[^/]+/json$", self.path):
            self._reply(200, {"Id": self.path.split("/")[-2], "State": {"Status": "created"}})
        else:
            self._reply(404, {"message": f"not part of the stand-in: GET {self.path}"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.calls.append(("POST", self.path, body))
        if re.search(r"/containers/create(\?|$)", self.path):
            self._reply(201, {"Id": f"run-container-{len(self.calls)}", "Warnings": []})
        elif re.search(r"/containers/[^/]+/start$", self.path):
            self._reply(204)
        else:
            self._reply(404, {"message": f"not part of the stand-in: POST {self.path}"})


@contextlib.contextmanager
def docker_engine_stand_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str, Any]]]:
    calls: list[tuple[str, str, Any]] = []
    handler = type("Handler", (_DockerEngineStandIn,), {"calls": calls})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{server.server_address[1]}")
    try:
        yield calls
    finally:
        server.shutdown()
        server.server_close()


def _launch_backfill_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("launch_backfill", DEPLOY / "launch_backfill.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_backfill_runs_in_a_container_launched_by_the_docker_run_launcher(
    deployment: Deployment, workspace_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """launch_backfill.py's request → backfill daemon → run queue → DockerRunLauncher → the container's command."""
    from dagster._core.execution.backfill import BulkActionStatus
    from dagster._core.storage.tags import BACKFILL_ID_TAG
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget
    from dagster._daemon.backfill import execute_backfill_iteration
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
    from dagster_graphql.test.utils import execute_dagster_graphql

    script = _launch_backfill_script()
    start, end = BACKFILL_DAYS
    logger = logging.getLogger("test_deploy")
    config = _yaml("dagster.yaml")["run_launcher"]["config"]
    with (
        docker_engine_stand_in(monkeypatch) as docker_calls,
        deployment.instance() as instance,  # the production config, DockerRunLauncher and all
        WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(workspace_file)])) as workspace,
    ):
        assert isinstance(instance.run_launcher, DockerRunLauncher)
        # 0. The code location, served over gRPC by the compose command, reached through deploy/workspace.yaml.
        location = workspace.create_request_context().get_code_location(LOCATION)
        assert location.container_image == CODE_SERVER_IMAGE
        repository = location.get_repository("__repository__")
        assert {dg.AssetKey(p) for p in ADS} <= {node.key for node in repository.asset_graph.asset_nodes}
        assert "monthly_attribution_schedule" in {s.name for s in repository.get_schedules()}
        assert {"landing_sensor", "source_health_sensor"} <= {s.name for s in repository.get_sensors()}

        # 1. What deploy/launch_backfill.py sends the webserver, through Dagster's GraphQL layer. The
        #    steps run in the run worker's own process (in_process executor) only to spare this test
        #    two Python start-ups; production runs keep the default multiprocess executor.
        variables = script.backfill_params(["/".join(p) for p in ADS], start, end, title="deploy test")
        variables["backfillParams"]["runConfigData"] = {"execution": {"config": {"in_process": {}}}}
        result = execute_dagster_graphql(workspace.create_request_context(), script.LAUNCH_BACKFILL, variables)
        launched = result.data["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]

        # 2. The daemon's backfill iteration submits one single-run run for both days: it waits in the queue.
        list(execute_backfill_iteration(workspace, logger))
        runs = instance.get_runs(filters=dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
        assert len(runs) == 1, runs
        run = runs[0]
        assert run.status == dg.DagsterRunStatus.QUEUED
        tags = run.tags
        assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == (start, end)

        # 3. The daemon's run-queue iteration hands it to the DockerRunLauncher, which asks Docker for a container.
        list(QueuedRunCoordinatorDaemon(interval_seconds=1).run_iteration(workspace))
        created = [body for method, path, body in docker_calls if method == "POST" and "/containers/create" in path]
        assert len(created) == 1, docker_calls
        assert sum(1 for m, p, _ in docker_calls if m == "POST" and p.endswith("/start")) == 1
        container = created[0]
        launched_run = instance.get_run_by_id(run.run_id)
        assert launched_run is not None and launched_run.status == dg.DagsterRunStatus.STARTING
        assert launched_run.tags["docker/container_id"].startswith("run-container-")

        assert container["Image"] == CODE_SERVER_IMAGE  # the code server's DAGSTER_CURRENT_IMAGE wins
        host = container["HostConfig"]
        assert host["NetworkMode"] == config["network"]
        assert sorted(host["Binds"]) == sorted(config["container_kwargs"]["volumes"])
        assert host["Init"] is True and container["Healthcheck"]["Test"] == ["NONE"]
        assert container["Labels"]["dagster/run_id"] == run.run_id
        env = dict(item.split("=", 1) for item in container["Env"])
        assert set(config["env_vars"]) <= set(env)
        assert env["DAGSTER_PG_PASSWORD"] == PG_PASSWORD
        command = container["Cmd"]
        assert command[:3] == ["dagster", "api", "execute_run"]
        assert PG_PASSWORD not in json.dumps(command)  # `docker inspect` and `ps` show the command line

        # 4. Play the container: its command and environment, the image's ENV, the data volume's place.
        image_env = {
            "DAGSTER_HOME": str(deployment.dagster_home),
            "INTELLIGENCE_HOME": str(deployment.intelligence_home),
        }
        base = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "INTELLIGENCE_"))}
        base["PATH"] = f"{VENV_BIN}{os.pathsep}{base.get('PATH', '')}"
        worker = subprocess.run(
            command,
            env={**base, **image_env, **env},
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
        assert worker.returncode == 0, worker.stdout[-4000:] + worker.stderr[-4000:]
        finished = instance.get_run_by_id(run.run_id)
        assert finished is not None and finished.status == dg.DagsterRunStatus.SUCCESS, worker.stderr[-4000:]
        for path in ADS:
            records = instance.fetch_materializations(dg.AssetKey(path), limit=20).records
            assert {r.partition_key for r in records if r.run_id == run.run_id} == set(BACKFILL_DAYS), path

        # 5. The next backfill iteration sees its only run finished and completes the backfill.
        list(execute_backfill_iteration(workspace, logger))
        backfill = instance.get_backfill(backfill_id)
        assert backfill is not None and backfill.status == BulkActionStatus.COMPLETED_SUCCESS, backfill.status
    for day in BACKFILL_DAYS:
        assert (deployment.intelligence_home / "lake" / "marketing" / "cleansed_ads" / f"{day}.parquet").exists()


def test_backfill_script_reports_an_unreachable_webserver(capsys: pytest.CaptureFixture[str]) -> None:
    script = _launch_backfill_script()
    port = free_port()  # nothing listens there
    code = script.main(
        [
            "--assets",
            "marketing/raw_ads",
            "--start",
            "2024-01-01",
            "--end",
            "2024-01-02",
            "--url",
            f"http://127.0.0.1:{port}",
        ]
    )
    assert code == 1
    assert "backfill not launched" in capsys.readouterr().err
    with pytest.raises(ValueError):
        script.backfill_params([], "2024-01-01", "2024-01-02")
