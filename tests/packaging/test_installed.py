"""The steps the Containerfile runs, from a plain (non-editable) install outside the checkout.

Build a wheel from the build context .containerignore describes, install it into a fresh
virtualenv (no system or development site-packages), then, from a folder outside the
checkout and with production settings: migrate, load the catalogs, create an operator,
collectstatic, ``check --deploy``, and serve the login page with its CSS and a websocket.

Dependencies are installed by pip's resolver from the wheel's own metadata (so a runtime
import only the development extras provide fails here), at the versions of the development
virtualenv, from a local wheelhouse cached in ~/.cache/butler-portal/wheelhouse: offline
after the first run (about 10 s to fill from PyPI), about 15 s to install.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import psycopg
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.typing import Origin

REPO = Path(__file__).resolve().parents[2]
WHEELHOUSE = Path.home() / ".cache" / "butler-portal" / "wheelhouse"
OPERATOR_PASSWORD = "packaging-test-passphrase-58"
TENANT = "packaged"


# --- The build context ------------------------------------------------------------------


def _pattern(glob: str) -> re.Pattern[str]:
    """A .containerignore pattern: ``*`` and ``?`` stay within a path segment, ``**`` does not."""
    out = ""
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif glob.startswith("**", i):
            out, i = out + ".*", i + 2
        elif glob[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif glob[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(glob[i]), i + 1
    return re.compile(out)


def context_rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in (REPO / ".containerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keep = line.startswith("!")
            rules.append((keep, _pattern(line.lstrip("!").strip("/"))))
    return rules


def excluded(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for keep, pattern in rules:
        if any(pattern.fullmatch(prefix) for prefix in prefixes):
            verdict = not keep
    return verdict


def copy_build_context(target: Path) -> None:
    rules = context_rules()
    for path in sorted(REPO.rglob("*")):
        relative = path.relative_to(REPO).as_posix()
        if path.is_file() and not excluded(relative, rules):
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / relative)


# --- Running the install ------------------------------------------------------------------


def run(*command: str | Path, env: dict[str, str], cwd: Path, timeout: float = 300) -> str:
    result = subprocess.run(
        [str(part) for part in command],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def files_of(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Install:
    wheel: Path
    venv: Path
    site_packages: Path
    workdir: Path  # outside the checkout: where every command runs
    static_root: Path
    env: dict[str, str]  # production settings
    files: list[str] = field(repr=False)  # what the install holds, right after pip

    def manage(self, *args: str) -> str:
        return run(self.venv / "bin" / "butler-portal", *args, env=self.env, cwd=self.workdir)


def install_wheel(wheel: Path, venv: Path, tmp: Path) -> None:
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    # The versions the development virtualenv (and so the whole suite) runs with.
    freeze = run(
        sys.executable, "-m", "pip", "freeze", "--exclude-editable", env=dict(os.environ), cwd=tmp
    )
    constraints = tmp / "constraints.txt"
    constraints.write_text(
        "".join(
            line + "\n"
            for line in freeze.splitlines()
            if "==" in line and not line.startswith("butler-portal")
        )
    )
    offline = [
        *pip,
        "install",
        "--no-compile",
        "--no-index",
        "--find-links",
        str(WHEELHOUSE),
        "-c",
        str(constraints),
        str(wheel),
    ]
    env = {**os.environ, "PIP_FIND_LINKS": ""}
    if subprocess.run(offline, env=env, cwd=tmp, capture_output=True, check=False).returncode:
        # First run, or new dependencies: fill the wheelhouse from PyPI, then install offline.
        WHEELHOUSE.mkdir(parents=True, exist_ok=True)
        run(
            *pip[:3], "download", "-q", "-d", WHEELHOUSE, "-c", constraints, wheel, env=env, cwd=tmp
        )
        run(*offline, env=env, cwd=tmp)


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A database of its own on the suite's Postgres, as a production one: migrated by the install."""
    url = urlsplit(os.environ["DATABASE_URL"])
    name = f"{os.environ.get('TEST_DATABASE_NAME', 'test_butler_portal')}_installed"
    server = urlunsplit(url._replace(path="/postgres"))
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(url._replace(path=f"/{name}"))
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, database: str) -> Install:
    tmp = tmp_path_factory.mktemp("installed")
    assert not tmp.is_relative_to(REPO)
    context, dist, venv, workdir, home = (
        tmp / name for name in ("context", "dist", "venv", "work", "home")
    )
    for folder in (context, workdir, home):
        folder.mkdir()
    copy_build_context(context)
    # The Containerfile's static stage runs scripts/vendor-static.sh; `make install` ran the
    # same script for this checkout, so its output stands in for that stage here.
    shutil.copytree(REPO / "static" / "vendor", context / "static" / "vendor")
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "--wheel-dir",
        dist,
        context,
        env=dict(os.environ),
        cwd=tmp,
    )
    (wheel,) = dist.glob("butler_portal-*.whl")
    # No --system-site-packages: only the wheel and what its metadata asks for.
    run(sys.executable, "-m", "venv", "--without-pip", venv, env=dict(os.environ), cwd=tmp)
    install_wheel(wheel, venv, tmp)
    (site_packages,) = venv.glob("lib/python3*/site-packages")
    static_root = tmp / "static-root"
    env = {
        # Nothing inherited from the test run (its DEBUG, KUBE_MODE, PYTHONPATH...).
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",  # so any file written into the install shows up
        "DJANGO_SETTINGS_MODULE": "butler_portal.settings",
        "DEBUG": "false",
        "SECRET_KEY": "packaging-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database,
        "REDIS_URL": os.environ["REDIS_URL"],
        "CHANNEL_LAYER_PREFIX": f"pkg{os.getpid()}",
        "STATIC_ROOT": str(static_root),
        # No Kubernetes and no Celery worker here: provisioning tasks run in-process, off.
        "KUBE_MODE": "off",
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "LOG_LEVEL": "WARNING",
    }
    return Install(wheel, venv, site_packages, workdir, static_root, env, files_of(site_packages))


# --- The wheel ----------------------------------------------------------------------------


def test_the_wheel_carries_every_package_the_templates_static_files_and_crds(
    installed: Install,
) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())

    packages = {
        init.parent.relative_to(REPO).as_posix()
        for app in ("butler_portal", "tenants", "clusters", "vms")
        for init in (REPO / app).rglob("__init__.py")
    }
    assert {f"{package}/__init__.py" for package in packages} <= names
    templates = {
        f"butler_portal/{p.relative_to(REPO).as_posix()}"
        for p in (REPO / "templates").rglob("*.html")
    }
    assert templates
    assert templates <= names
    static = {
        f"butler_portal/{p.relative_to(REPO).as_posix()}"
        for p in (REPO / "static").rglob("*")
        if p.is_file() and not p.name.startswith(".")  # make's stamp files stay behind
    }
    assert "butler_portal/static/vendor/xterm/xterm.js" in static
    assert static <= names
    crds = REPO / "butler_portal" / "kube" / "crds"
    crd_files = {p.relative_to(REPO).as_posix() for p in crds.rglob("*.yaml")} | {
        "butler_portal/kube/crds/SOURCES.md"
    }
    assert len(crd_files) > 10
    assert crd_files <= names
    # Nothing lands at the top of site-packages but the portal's own packages.
    assert {name.split("/")[0] for name in names if "dist-info" not in name} == {
        "butler_portal",
        "tenants",
        "clusters",
        "vms",
    }


def test_the_install_runs_its_own_copy_outside_the_checkout(installed: Install) -> None:
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        "import butler_portal, tenants, clusters, vms; "
        "print(json.dumps({'modules': [m.__file__ for m in (butler_portal, tenants, clusters, vms)], "
        "'templates': str(settings.TEMPLATES[0]['DIRS'][0]), 'static': str(settings.STATICFILES_DIRS[0]), "
        "'checkout': settings.CHECKOUT}))"
    )
    report = json.loads(
        run(installed.venv / "bin" / "python", "-c", code, env=installed.env, cwd=installed.workdir)
    )

    assert report["checkout"] is False
    for path in [*report["modules"], report["templates"], report["static"]]:
        assert Path(path).is_relative_to(installed.site_packages), path
    assert Path(report["templates"], "base.html").is_file()


# --- What the image and its release job run -------------------------------------------------


@pytest.fixture(scope="module")
def released(installed: Install) -> dict[str, str]:
    """The release job's steps and the image build's collectstatic, from the install."""
    outputs = {
        "migrate": installed.manage("migrate", "--noinput"),
        "load_catalogs": installed.manage("load_catalogs"),
        "load_catalogs again": installed.manage("load_catalogs"),
        "create_operator": run(
            installed.venv / "bin" / "butler-portal",
            "create_operator",
            "ops",
            "--email",
            "ops@example.test",
            env={**installed.env, "BUTLER_OPERATOR_PASSWORD": OPERATOR_PASSWORD},
            cwd=installed.workdir,
        ),
        "collectstatic": installed.manage("collectstatic", "--noinput"),
        "check": installed.manage("check", "--deploy", "--fail-level", "WARNING"),
        # A tenant for the websocket (operators create them in the console).
        "tenant": installed.manage(
            "shell",
            "-c",
            "from tenants.audit import Actor; from tenants.services import tenant_create; "
            f"tenant_create(actor=Actor.system(), slug='{TENANT}', name='Packaged', limits={{}})",
        ),
    }
    return outputs


def test_migrate_bootstrap_collectstatic_and_check_deploy(
    installed: Install, released: dict[str, str]
) -> None:
    assert "entries added" in released["load_catalogs"]
    assert "nothing changed" in released["load_catalogs again"]
    assert "Operator ops created" in released["create_operator"]
    assert "no issues" in released["check"]
    manifest = json.loads((installed.static_root / "staticfiles.json").read_text())
    assert "css/portal.css" in manifest["paths"]
    assert "vendor/xterm/xterm.js" in manifest["paths"]
    # Settings wrote nothing into the install and made no state folder (read-only images).
    assert files_of(installed.site_packages) == installed.files
    assert not any(Path(installed.env["HOME"]).iterdir())


# --- Serving ------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


class Browser:
    """Plain HTTP to the served install, as its ingress forwards it (HTTPS ended before)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.origin = f"https://127.0.0.1:{port}"
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> Response:
        headers = {"X-Forwarded-Proto": "https", "Referer": f"{self.origin}/login/"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = urlencode(form).encode() if form is not None else None
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            result = Response(response.status, response.headers, response.read())
        finally:
            connection.close()
        for header in result.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return result


@pytest.fixture(scope="module")
def served(installed: Install, released: dict[str, str]) -> Iterator[int]:
    """The web process as the image starts it, from the folder outside the checkout."""
    port = free_port()
    log = installed.workdir / "uvicorn.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [
                installed.venv / "bin" / "uvicorn",
                "butler_portal.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--proxy-headers",
            ],
            env=installed.env,
            cwd=installed.workdir,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, log.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_serves_the_login_page_with_its_collected_css(installed: Install, served: int) -> None:
    browser = Browser(served)

    page = browser.request("GET", "/login/")

    assert page.status == 200, page.body[:2000]
    html = page.body.decode()
    stylesheet = re.search(
        r'<link rel="stylesheet" href="(/static/css/portal\.[0-9a-f]{12}\.css)"', html
    )
    assert stylesheet, "the page links the hashed name from collectstatic's manifest"
    css = browser.request("GET", stylesheet[1])
    assert css.status == 200
    assert css.headers["Content-Type"].startswith("text/css")
    assert css.body == (installed.static_root / stylesheet[1].removeprefix("/static/")).read_bytes()
    assert css.body == (REPO / "static" / "css" / "portal.css").read_bytes()


def test_serves_the_tenant_websocket_to_a_signed_in_operator_only(served: int) -> None:
    browser = Browser(served)
    page = browser.request("GET", "/login/").body.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token
    signed_in = browser.request(
        "POST",
        "/login/",
        {"username": "ops", "password": OPERATOR_PASSWORD, "csrfmiddlewaretoken": token[1]},
    )
    assert signed_in.status == 302, signed_in.body[:2000]
    assert "sessionid" in browser.cookies
    url = f"ws://127.0.0.1:{served}/ws/tenants/{TENANT}/"
    headers = {"X-Forwarded-Proto": "https"}

    cookie = f"sessionid={browser.cookies['sessionid']}"
    with connect(
        url,
        origin=Origin(browser.origin),
        additional_headers={**headers, "Cookie": cookie},
        open_timeout=30,
    ) as socket_:
        hello = json.loads(socket_.recv(timeout=30))
    assert hello == {"kind": "hello", "tenant": TENANT}

    # Without a session the consumer accepts only to close at once with 4401 ("sign in
    # again"), having sent nothing: the page can tell a signed-out browser from a server down.
    with (
        connect(
            url, origin=Origin(browser.origin), additional_headers=headers, open_timeout=30
        ) as signed_out,
        pytest.raises(ConnectionClosed) as closed,
    ):
        signed_out.recv(timeout=30)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401
