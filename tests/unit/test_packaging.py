"""The deployment files, checked without Docker: compose, Dockerfile, Slack manifest, CI template.

No Docker engine is needed: these tests read the files and check them against the code they
start (the `approval-bot` argument parser, the Flask routes, the settings model).
"""

from __future__ import annotations

import fnmatch
import io
import json
import re
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask

from bot.cli import build_parser, config_check
from bot.policy import Gate
from bot.settings import Settings, load_settings
from bot.store.db import normalize_url
from bot.web import gitlab_hooks, health, slack_routes

ROOT = Path(__file__).resolve().parents[2]
BOT_SERVICES = ("migrate", "web", "worker")
WEB_ARGV = ["web", "--host", "0.0.0.0", "--port", "8080"]
POLICY_MOUNT = "./config:/app/config:ro"

# Files the Dockerfile copies that other work adds to the repository; until they exist, the
# checks that need them skip (with this reason) instead of failing.
PROVIDED_ELSEWHERE = {
    "requirements.lock": "requirements.lock (pip-freeze style pins) is not in the repository yet",
    "README.md": "README.md (pyproject's readme) is not in the repository yet",
}

EXPECTED_SCOPES = {
    "chat:write",
    "commands",
    "users:read",
    "users:read.email",
    "usergroups:read",
    "im:write",
}


def load_yaml(name: str) -> Any:
    return yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))


def assert_cli_parses(argv: list[str]) -> None:
    """The arguments are a real `approval-bot` command line (argparse exits on a bad one)."""
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"`approval-bot {' '.join(argv)}` is not a valid approval-bot command line")


def app_routes() -> dict[str, set[str]]:
    """The HTTP routes the bot serves, from its blueprints (no runtime needed)."""
    app = Flask("routes")
    for module in (gitlab_hooks, slack_routes, health):
        app.register_blueprint(module.blueprint)
    return {rule.rule: set(rule.methods or ()) for rule in app.url_map.iter_rules()}


# --- docker-compose.yml ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml("docker-compose.yml")


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def test_compose_has_the_services(services: dict[str, Any]) -> None:
    assert set(services) == {"redis", "postgres", "migrate", "web", "worker"}


@pytest.mark.parametrize("name", BOT_SERVICES)
def test_compose_bot_service_runs_a_real_subcommand(services: dict[str, Any], name: str) -> None:
    command = services[name]["command"]
    assert isinstance(command, list), "exec form, so no shell sits between the bot and SIGTERM"
    assert_cli_parses(command)


def test_compose_commands(services: dict[str, Any]) -> None:
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["web"]["command"] == WEB_ARGV
    assert services["worker"]["command"] == ["worker"]


@pytest.mark.parametrize("name", BOT_SERVICES)
def test_compose_bot_service_environment(services: dict[str, Any], name: str) -> None:
    service = services[name]
    env_file = service["env_file"]
    assert (env_file if isinstance(env_file, list) else [env_file]) == [".env"]
    assert service["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert "@postgres:5432/" in service["environment"]["DATABASE_URL"]
    assert POLICY_MOUNT in service["volumes"]
    assert service["image"]
    assert service["build"] == "."


def test_compose_database_url_uses_the_shipped_driver(services: dict[str, Any]) -> None:
    raw = services["web"]["environment"]["DATABASE_URL"]
    # Substitute compose's ${VAR:-default} and ${VAR:?error} as compose would with the defaults.
    url = re.sub(r"\$\{(\w+):([-?])([^}]*)\}", lambda m: m[3] if m[2] == "-" else "secret", raw)
    parsed = normalize_url(url)
    assert parsed.get_backend_name() == "postgresql"
    assert parsed.host == "postgres"
    assert parsed.get_dialect().driver == "psycopg", "a plain postgresql:// URL must use psycopg 3"


def test_compose_dependencies_and_lifecycle(services: dict[str, Any]) -> None:
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "redis": {"condition": "service_healthy"},
        }
        assert services[name]["restart"] == "unless-stopped"
    assert services["web"]["ports"] == ["8080:8080"]
    assert services["worker"]["stop_grace_period"] == "45s"


def test_compose_healthchecks(services: dict[str, Any]) -> None:
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    # The image's HEALTHCHECK probes HTTP: only web serves it.
    assert "healthcheck" not in services["web"]
    assert services["worker"]["healthcheck"] == {"disable": True}
    assert services["migrate"]["healthcheck"] == {"disable": True}


def test_compose_stores(compose: dict[str, Any], services: dict[str, Any]) -> None:
    redis = services["redis"]
    assert str(redis["image"]).startswith("redis:7")
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert "redis-data:/data" in redis["volumes"]

    postgres = services["postgres"]
    assert str(postgres["image"]).startswith("postgres:16")
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert set(postgres["environment"]) == {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}
    assert set(compose["volumes"]) == {"redis-data", "postgres-data", "bot-var"}
    # The ledger checkpoints (LEDGER_CHECKPOINT_PATH under var/) outlive the containers.
    for name in ("web", "worker"):
        assert "bot-var:/app/var" in services[name]["volumes"]


def test_compose_variables_are_documented_in_env_example() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    used = set(re.findall(r"(?<!\$)\$\{(\w+)", text))
    assert used, "expected ${...} interpolation in docker-compose.yml"
    assert used <= env_example_names()


# --- Dockerfile --------------------------------------------------------------------------------


class Dockerfile:
    """Just enough of Dockerfile syntax for review checks: stages of (keyword, arguments)."""

    def __init__(self, text: str) -> None:
        kept = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
        joined = re.sub(r"\\\n", " ", "\n".join(kept))
        self.global_args: dict[str, str] = {}
        self.stages: list[list[tuple[str, str]]] = []
        for line in joined.splitlines():
            if not line.strip():
                continue
            keyword, _, rest = line.strip().partition(" ")
            keyword, rest = keyword.upper(), rest.strip()
            if keyword == "FROM":
                self.stages.append([])
            if not self.stages:
                if keyword == "ARG" and "=" in rest:
                    name, _, value = rest.partition("=")
                    self.global_args[name] = value
                continue
            self.stages[-1].append((keyword, rest))

    @property
    def final(self) -> list[tuple[str, str]]:
        return self.stages[-1]

    def base(self, stage: list[tuple[str, str]]) -> str:
        image = stage[0][1].split()[0]
        return re.sub(r"\$\{(\w+)\}", lambda m: self.global_args[m[1]], image)

    def all(self, keyword: str, stage: list[tuple[str, str]] | None = None) -> list[str]:
        stages = [stage] if stage is not None else self.stages
        return [rest for st in stages for key, rest in st if key == keyword]

    def one(self, keyword: str) -> str:
        found = self.all(keyword, self.final)
        assert len(found) == 1, f"expected one {keyword} in the final stage, found {found}"
        return found[0]

    def copy_sources(self) -> list[str]:
        """Sources of COPY instructions that read the build context (not --from=stage)."""
        sources = []
        for rest in self.all("COPY"):
            words = rest.split()
            if any(word.startswith("--from") for word in words):
                continue
            paths = [word for word in words if not word.startswith("--")]
            sources.extend(paths[:-1])
        return sources


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return Dockerfile((ROOT / "Dockerfile").read_text(encoding="utf-8"))


def dockerignored(path: str) -> bool:
    """Whether .dockerignore keeps `path` (top level, as COPY names it) out of the context."""
    excluded = False
    for raw in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.removeprefix("!").strip("/")
        if pattern.startswith("**/"):
            matched = fnmatch.fnmatch(path.rsplit("/", 1)[-1], pattern.removeprefix("**/"))
        else:
            matched = fnmatch.fnmatch(path, pattern)
        if matched:
            excluded = not negate
    return excluded


def test_dockerfile_is_multi_stage_on_python_slim(dockerfile: Dockerfile) -> None:
    assert len(dockerfile.stages) >= 2
    assert dockerfile.base(dockerfile.final) == "python:3.11-slim"
    builder_runs = " ".join(dockerfile.all("RUN", dockerfile.stages[0]))
    assert "pip install -r requirements.lock" in builder_runs
    assert "pip install --no-deps ." in builder_runs


def test_dockerfile_copies_files_that_exist(dockerfile: Dockerfile) -> None:
    sources = [source.rstrip("/").removeprefix("./") for source in dockerfile.copy_sources()]
    assert {"requirements.lock", "pyproject.toml", "bot", "workers", "config"} <= set(sources)
    for source in sources:
        assert not dockerignored(source), f".dockerignore excludes {source}, which COPY needs"
    pending = []
    for source in sources:
        if (ROOT / source).exists():
            continue
        if source in PROVIDED_ELSEWHERE:
            pending.append(PROVIDED_ELSEWHERE[source])
            continue
        pytest.fail(f"the Dockerfile copies {source}, which is not in the repository")
    if pending:
        pytest.skip("; ".join(pending))


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    for path in (".env", ".venv", "var", ".git", "tests", "bot/__pycache__"):
        assert dockerignored(path), f"{path} must not reach the build context"


def test_image_policy_is_valid() -> None:
    """config/ is copied into the image: its approvers.yml must pass `config check`."""
    out = io.StringIO()
    assert config_check(ROOT / "config" / "approvers.yml", out=out) == 0, out.getvalue()


def test_dockerfile_entrypoint_and_cmd(dockerfile: Dockerfile) -> None:
    assert json.loads(dockerfile.one("ENTRYPOINT")) == ["approval-bot"]
    cmd = json.loads(dockerfile.one("CMD"))
    assert_cli_parses(cmd)
    assert cmd == WEB_ARGV
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert scripts["scripts"]["approval-bot"] == "bot.cli:main"


def test_dockerfile_runs_as_non_root(dockerfile: Dockerfile) -> None:
    user = dockerfile.one("USER")
    assert user.split(":")[0] not in ("root", "0")
    assert user.split(":")[0] == "10001"
    runs = " ".join(dockerfile.all("RUN", dockerfile.final))
    assert "--uid 10001" in runs
    assert "approval-bot" in runs


def test_dockerfile_runtime_layout(dockerfile: Dockerfile) -> None:
    assert dockerfile.one("WORKDIR") == "/app"
    assert dockerfile.one("EXPOSE") == "8080"
    env = " ".join(dockerfile.all("ENV", dockerfile.final))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "PYTHONUNBUFFERED=1" in env
    runs = " ".join(dockerfile.all("RUN", dockerfile.final))
    # The SQLite default needs a writable /app/var.
    assert "mkdir -p /app/var" in runs
    assert "chown approval-bot:approval-bot /app/var" in runs


def healthcheck_argv(dockerfile: Dockerfile) -> list[str]:
    spec = dockerfile.one("HEALTHCHECK")
    assert " CMD " in f" {spec}", spec
    return json.loads(spec.split("CMD", 1)[1])


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_dockerfile_healthcheck_probes_healthz(
    dockerfile: Dockerfile, health_server: HTTPServer
) -> None:
    argv = healthcheck_argv(dockerfile)
    assert argv[:2] == ["python", "-c"], "slim has no curl: the probe uses Python's urllib"
    assert "http://127.0.0.1:8080/healthz" in argv[2]
    assert "GET" in app_routes()["/healthz"]
    # Run the probe against a stand-in server: exit 0 on 200, non-zero otherwise.
    port = health_server.server_address[1]
    code = argv[2].replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    probe = [sys.executable, "-c", code]
    _Health.status = 200
    assert subprocess.run(probe, capture_output=True, timeout=30, check=False).returncode == 0
    _Health.status = 503
    assert subprocess.run(probe, capture_output=True, timeout=30, check=False).returncode != 0


# --- make image-test (scripts/image-test), run by .ci/run --------------------------------------


def makefile_recipe(target: str) -> list[str]:
    """The recipe lines of a Makefile target (empty when the target has none)."""
    lines = (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if re.match(rf"^{re.escape(target)}\s*:", line):
            recipe = []
            for following in lines[index + 1 :]:
                if not following.startswith("\t"):
                    break
                recipe.append(following.strip())
            return recipe
    pytest.fail(f"the Makefile has no {target} target")


def test_make_image_test_runs_the_script() -> None:
    assert makefile_recipe("image-test") == ["scripts/image-test"]
    phony = re.search(r"^\.PHONY:(.*)$", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)
    assert phony
    assert "image-test" in phony[1].split()
    script = ROOT / "scripts" / "image-test"
    assert script.stat().st_mode & 0o111, "scripts/image-test must be executable"
    text = script.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    check = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr


def test_image_test_stands_in_for_the_dockerfiles_base(dockerfile: Dockerfile) -> None:
    """The stand-in is tagged as the Dockerfile's FROM; the Dockerfile keeps the real one."""
    text = (ROOT / "scripts" / "image-test").read_text(encoding="utf-8")
    base = re.search(r"^BASE=(\S+)", text, flags=re.MULTILINE)
    assert base, "scripts/image-test names the base image in BASE="
    assert base[1] == f"docker.io/library/{dockerfile.base(dockerfile.final)}"
    assert "--pull=never" in text
    assert "--format docker" in text, "OCI images drop HEALTHCHECK"
    assert "6379" not in text.replace("[[ $port == 6379 ]]", ""), "no fixed Redis port"


def test_ci_runs_the_image_test_after_the_tests() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert "set -euo pipefail" in lines, "a failing step must fail CI"
    assert "make image-test" in lines
    assert lines.index("make test") < lines.index("make image-test")


# --- requirements.lock -------------------------------------------------------------------------


def test_requirements_lock_pins_the_runtime_dependencies() -> None:
    lock = ROOT / "requirements.lock"
    if not lock.exists():
        pytest.skip(PROVIDED_ELSEWHERE["requirements.lock"])
    pinned = {}
    for raw in lock.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        assert not line.startswith(("-e", "--editable")), f"editable install in the lock: {raw}"
        requirement = line.split(";", 1)[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(\S+)", requirement)
        assert match, f"not an exact pin: {raw}"
        pinned[canonical(match[1])] = match[3]
    # The project itself is installed from the source tree (`pip install --no-deps .`).
    assert "approval-bot" not in pinned, "requirements.lock must not pin approval-bot itself"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for dependency in project["dependencies"]:
        name = canonical(re.split(r"[\[<>=!~ ;]", dependency, maxsplit=1)[0])
        assert name in pinned, f"requirements.lock does not pin {name}"
    # python:3.11-slim has no libpq: psycopg 3 needs its binary wheel.
    assert "psycopg-binary" in pinned


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize("python", ["3.11.0", "3.11.2", "3.11.3", "3.12.0", "3.13.0"])
def test_requirements_lock_is_complete_on_every_supported_python(python: str) -> None:
    """What the pinned packages require on that Python is pinned too (for that Python).

    `pip freeze` on one Python misses dependencies only another needs: redis needs
    async-timeout below 3.11.3, and python:3.11-slim-like images (Debian bookworm) have 3.11.2.
    """
    from importlib import metadata

    from packaging.markers import Marker
    from packaging.requirements import Requirement

    lock = ROOT / "requirements.lock"
    if not lock.exists():
        pytest.skip(PROVIDED_ELSEWHERE["requirements.lock"])
    environment = {"python_full_version": python, "python_version": python.rsplit(".", 1)[0]}
    pinned = set()
    for raw in lock.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement, _, marker = line.partition(";")
        if marker and not Marker(marker).evaluate({**environment, "extra": ""}):
            continue
        pinned.add(canonical(requirement.split("==", 1)[0].split("[", 1)[0]))
    missing = []
    for name in sorted(pinned):
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # not installed on this Python (a marker excluded it here)
        for spec in map(Requirement, requires):
            if spec.marker is not None and not spec.marker.evaluate({**environment, "extra": ""}):
                continue
            if canonical(spec.name) not in pinned:
                missing.append(f"{name} needs {spec} on Python {python}")
    assert not missing, "requirements.lock misses: " + "; ".join(missing)


# --- slack/manifest.yml ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return load_yaml("slack/manifest.yml")


def test_manifest_urls_are_the_bots_routes(manifest: dict[str, Any]) -> None:
    routes = app_routes()
    interactivity = manifest["settings"]["interactivity"]
    assert interactivity["is_enabled"] is True
    assert interactivity["request_url"].startswith("https://")
    assert interactivity["request_url"].endswith("/slack/interactions")
    assert "POST" in routes["/slack/interactions"]
    [command] = manifest["features"]["slash_commands"]
    assert command["url"].startswith("https://")
    assert command["url"].endswith("/slack/commands")
    assert "POST" in routes["/slack/commands"]


def test_manifest_slash_command(manifest: dict[str, Any]) -> None:
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/approvals"
    assert command["usage_hint"] == "pending | whoami | policy [project] | help"
    assert command["should_escape"] is False
    assert command["description"]


def test_manifest_scopes_are_exactly_what_the_bot_calls_need(manifest: dict[str, Any]) -> None:
    scopes = manifest["oauth_config"]["scopes"]
    assert set(scopes) == {"bot"}, "no user-token scopes"
    assert len(scopes["bot"]) == len(set(scopes["bot"]))
    assert set(scopes["bot"]) == EXPECTED_SCOPES


def test_manifest_settings(manifest: dict[str, Any]) -> None:
    assert manifest["display_information"]["name"]
    assert len(manifest["display_information"]["name"]) <= 35
    assert len(manifest["display_information"].get("description", "")) <= 140
    assert manifest["features"]["bot_user"]["display_name"]
    settings = manifest["settings"]
    assert settings["org_deploy_enabled"] is False
    assert settings["socket_mode_enabled"] is False
    assert settings["token_rotation_enabled"] is False


# --- templates/compliance-gate.gitlab-ci.yml ---------------------------------------------------


@pytest.fixture(scope="module")
def ci() -> dict[str, Any]:
    return load_yaml("templates/compliance-gate.gitlab-ci.yml")


def job_rules(ci: dict[str, Any], name: str) -> list[dict[str, Any]]:
    job = ci[name]
    if "rules" in job:
        return job["rules"]
    parent = job["extends"]
    return job_rules(ci, parent if isinstance(parent, str) else parent[0])


def test_ci_gate_is_a_blocking_manual_job(ci: dict[str, Any]) -> None:
    gate = ci[Gate.model_fields["job"].default]
    assert gate["stage"] == "approve"
    assert gate["stage"] in ci["stages"]
    assert ci["stages"].index("approve") < ci["stages"].index("deploy")
    assert gate["allow_failure"] is False
    assert gate["resource_group"] == "production"
    [rule] = gate["rules"]
    assert rule["when"] == "manual"
    assert rule["if"] == "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"
    script = " ".join(gate["script"])
    for variable in ("CI_COMMIT_SHA", "CI_PIPELINE_URL", "GITLAB_USER_LOGIN"):
        assert variable in script


def test_ci_deploy_waits_for_the_gate(ci: dict[str, Any]) -> None:
    deploy = ci["deploy-production"]
    assert deploy["needs"] == ["compliance-gate"]
    assert deploy["environment"] == {"name": "production", "deployment_tier": "production"}
    rollback = ci["rollback:production"]
    assert [rule["when"] for rule in rollback["rules"]] == ["manual"]
    assert rollback["allow_failure"] is True
    assert rollback["environment"]["name"] == "production"


def test_ci_jobs_needing_the_gate_exist_when_it_does(ci: dict[str, Any]) -> None:
    """A job that `needs` the gate on a branch without it would make the pipeline invalid."""
    gate_if = [rule["if"] for rule in job_rules(ci, "compliance-gate")]
    needing = [name for name, job in ci.items() if "compliance-gate" in job_needs(job)]
    assert set(needing) == {"deploy-production", "rollback:production"}
    for name in needing:
        assert [rule["if"] for rule in job_rules(ci, name)] == gate_if


def job_needs(job: Any) -> list[str]:
    if not isinstance(job, dict):
        return []
    return [need if isinstance(need, str) else need["job"] for need in job.get("needs", [])]


# --- .env.example --------------------------------------------------------------------------------


def env_example_names() -> set[str]:
    """Names set in .env.example, including commented-out `# NAME=value` examples."""
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    return set(re.findall(r"^(?:#\s*)?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def env_example_values() -> dict[str, str]:
    values = {}
    for raw in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if raw.strip() and not raw.lstrip().startswith("#"):
            name, _, value = raw.partition("=")
            values[name.strip()] = value.strip()
    return values


def test_env_example_names_every_setting() -> None:
    missing = set(Settings.model_fields) - env_example_names()
    assert not missing, f".env.example does not mention {sorted(missing)}"


def test_env_example_holds_placeholders_and_valid_defaults() -> None:
    values = env_example_values()
    for name in (
        "GITLAB_TOKEN",
        "GITLAB_WEBHOOK_SECRET",
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
    ):
        assert "REPLACE_ME" in values[name], f"{name} in .env.example must be a placeholder"
    assert "REPLACE_ME" in values["POSTGRES_PASSWORD"]
    settings = load_settings(values)
    assert settings.AUDIT_API_URL is None
    assert str(settings.APPROVAL_POLICY) == "config/approvers.yml"
