"""The cryptosignals-client wheel, proved from outside, and its channel helper.

From outside: the wheel is built as `make client` builds it (into a temporary directory), installed
into a fresh virtual environment that has no access to the server's venv, and its examples
(`client/examples/`) call GetSignal, WatchSignals and a refused symbol on a real server that
requires an API key. The fresh venv installs offline: `pip install --no-index --find-links` from a
wheelhouse of the wheel and of its dependencies, each rebuilt into a wheel from the files this venv
installed (its RECORD), so pip resolves the wheel's declared dependencies itself and nothing else
is there. The wheel's contents are checked by name (no server module), and the .proto files it
ships build with buf and generate through the committed `client/buf.gen.yaml`, offline.

The helper (`cryptosignals_client`) is tested here in-process against a small fake grpc.aio
server: the key on plaintext and TLS channels, the retry policy and the default deadline.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import tomllib
import zipfile
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from cryptosignals.v1 import alerts_pb2, alerts_pb2_grpc, live_pb2, live_pb2_grpc, signal_pb2, signal_pb2_grpc
from cryptosignals_client import DEFAULT_TIMEOUT_SECONDS, aio_channel, channel, service_config
from packaging.requirements import Requirement

from service.generated import PROTO_DIR, ROOT
from tests.stack import Stack, running_stack
from tests.test_tls import make_certificate
from twin import RecordedTwin

CLIENT_DIR = ROOT / "client"
BUF = Path(sys.executable).parent / "buf"
SERVER_MODULES = ("service", "signals", "providers", "records", "scoring", "twin", "bench", "deploy", "tests")
API_KEY = "client-package-test-key"


# --- the wheel ----------------------------------------------------------------------------------


async def _blocking(*argv: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """subprocess.run in a thread: the session's servers run on this loop, and Envoy health-checks
    them every 0.25 s (a loop blocked for seconds would turn them unhealthy for the next tests)."""

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kwargs)

    return await asyncio.to_thread(run)


@pytest.fixture(scope="module")
async def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built by the command `make client` runs (staging and output in a temporary directory)."""
    work = tmp_path_factory.mktemp("client-build")
    started = time.monotonic()
    done = await _blocking(
        sys.executable,
        "-m",
        "service.build.client_package",
        "--staging",
        work / "staging",
        "--out",
        work / "dist",
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    print(f"wheel built in {time.monotonic() - started:.1f} s")
    (wheel,) = (work / "dist").glob("cryptosignals_client-*.whl")
    return wheel


def test_the_wheel_holds_the_stubs_the_protos_and_the_helper_and_nothing_of_the_server(built: Path) -> None:
    with zipfile.ZipFile(built) as wheel:
        names = wheel.namelist()
        wheel_metadata = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    version = tomllib.loads((CLIENT_DIR / "pyproject.toml").read_text())["project"]["version"]
    top_level = {name.split("/")[0] for name in names}
    assert top_level == {"cryptosignals", "cryptosignals_client", f"cryptosignals_client-{version}.dist-info"}, (
        top_level
    )
    for name in names:
        parts = Path(name).parts
        assert not set(parts) & set(SERVER_MODULES), name
        assert "__pycache__" not in parts and not name.endswith(".pyc"), name
    outside_v1 = sorted(n for n in names if n.startswith("cryptosignals/") and not n.startswith("cryptosignals/v1/"))
    assert outside_v1 == ["cryptosignals/__init__.py", "cryptosignals/py.typed"]

    # Every .proto of the contract, with its messages, stubs and type hints for both.
    for proto in sorted(PROTO_DIR.rglob("*.proto")):
        relative = proto.relative_to(PROTO_DIR)
        stem = str(relative.with_suffix(""))
        assert str(relative) in names
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi"):
            assert f"{stem}{suffix}" in names, f"{stem}{suffix}"
    assert {"cryptosignals/py.typed", "cryptosignals_client/py.typed", "cryptosignals_client/__init__.py"} <= set(names)
    # google/api is a dependency (googleapis-common-protos), not vendored.
    assert not [n for n in names if n.startswith("google/")]

    headers = [line.split(": ", 1) for line in wheel_metadata.splitlines() if ": " in line]
    assert ["Name", "cryptosignals-client"] in headers
    assert dict(headers)["Version"] == version
    # The major version is the API's: cryptosignals.v1 -> 1.x.y.
    packages = {m for p in PROTO_DIR.rglob("*.proto") for m in re.findall(r"^package (\S+);", p.read_text(), re.M)}
    assert packages == {f"cryptosignals.v{version.split('.')[0]}"}, (packages, version)
    requires = sorted(Requirement(value).name for key, value in headers if key == "Requires-Dist")
    assert requires == ["googleapis-common-protos", "grpcio", "protobuf"]


def test_the_build_refuses_dependency_bounds_below_what_the_generated_code_checks(tmp_path: Path) -> None:
    from service.build.client_package import check_runtime_bounds

    (tmp_path / "x_pb2_grpc.py").write_text("GRPC_GENERATED_VERSION = '1.85.1'\n")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\ndependencies = ["grpcio>=1.85.1,<2"]\n')
    check_runtime_bounds(tmp_path, pyproject)
    pyproject.write_text('[project]\ndependencies = ["grpcio>=1.80,<2"]\n')
    with pytest.raises(SystemExit, match=r"needs grpcio>=1\.85\.1"):
        check_runtime_bounds(tmp_path, pyproject)


# --- a fresh venv with the wheel and its dependencies only --------------------------------------


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def repack_installed(name: str, into: Path) -> Path:
    """The installed distribution ``name`` as a wheel again, rebuilt from the files its RECORD lists."""
    dist = metadata.distribution(name)
    files = [f for f in dist.files or () if "__pycache__" not in f.parts and not str(f).startswith("..")]
    info_dir = next(f.parts[0] for f in files if f.parts[0].endswith(".dist-info"))
    installer_files = {f"{info_dir}/{n}" for n in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")}
    tags = [
        line.split(":", 1)[1].strip().split("-")
        for line in (dist.read_text("WHEEL") or "").splitlines()
        if line.startswith("Tag:")
    ]
    compressed = "-".join(".".join(sorted({tag[i] for tag in tags})) for i in range(3))
    wheel = into / f"{_normalized(dist.name)}-{dist.version}-{compressed}.whl"
    record = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as archive:
        for path in files:
            if str(path) in installer_files:
                continue
            data = Path(str(dist.locate_file(path))).read_bytes()
            archive.writestr(str(path), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{path},sha256={digest},{len(data)}")
        record.append(f"{info_dir}/RECORD,,")
        archive.writestr(f"{info_dir}/RECORD", "\n".join(record) + "\n")
    return wheel


def requirements_of(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    return [Requirement(line.split(": ", 1)[1]) for line in text.splitlines() if line.startswith("Requires-Dist: ")]


def wheelhouse_for(wheel: Path, into: Path) -> list[str]:
    """Rebuild the wheel's dependencies, transitively (markers evaluated, no extras), from this venv."""
    pending = requirements_of(wheel)
    done: set[str] = set()
    while pending:
        requirement = pending.pop()
        key = _normalized(requirement.name)
        if key in done or (requirement.marker is not None and not requirement.marker.evaluate({"extra": ""})):
            continue
        done.add(key)
        installed = metadata.distribution(requirement.name)
        assert installed.version in requirement.specifier, (requirement, installed.version)
        repack_installed(requirement.name, into)
        pending += [Requirement(r) for r in installed.requires or ()]
    return sorted(done)


@dataclass
class ClientVenv:
    python: Path
    site_packages: Path
    installed: dict[str, str] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment a caller's process gets: none of this venv's paths, no PYTHON* settings."""
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        return {**keep, "PATH": f"{self.python.parent}:/usr/bin:/bin", **extra}


@pytest.fixture(scope="module")
async def client_venv(built: Path, tmp_path_factory: pytest.TempPathFactory) -> ClientVenv:
    work = tmp_path_factory.mktemp("client-venv")
    wheelhouse = work / "wheelhouse"
    wheelhouse.mkdir()
    started = time.monotonic()
    dependencies = await asyncio.to_thread(wheelhouse_for, built, wheelhouse)
    venv = work / "venv"
    # The base interpreter, not this venv's: `python -m venv` from a venv makes an independent one.
    done = await _blocking(sys.executable, "-m", "venv", "--without-pip", venv)
    assert done.returncode == 0, done.stderr
    python = venv / "bin" / "python"
    # This venv's pip installs into the new one (--python), from the wheelhouse only.
    pip = (sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--disable-pip-version-check")
    done = await _blocking(
        *pip, "--no-index", "--find-links", wheelhouse, "--find-links", built.parent, "cryptosignals-client"
    )
    assert done.returncode == 0, done.stderr
    probe = await _blocking(
        python,
        "-c",
        "import sysconfig, json, importlib.metadata as m; print(sysconfig.get_paths()['purelib']);"
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))",
        env=ClientVenv(python, Path()).env(),
        cwd=work,  # not the repository: its cryptosignals.egg-info would be found on '' (the cwd)
    )
    assert probe.returncode == 0, probe.stderr
    site_packages, installed = probe.stdout.splitlines()
    print(f"fresh venv with {dependencies} in {time.monotonic() - started:.1f} s")
    return ClientVenv(python, Path(site_packages), json.loads(installed))


async def test_the_fresh_venv_has_the_client_and_its_dependencies_and_no_server(
    client_venv: ClientVenv, tmp_path: Path
) -> None:
    assert {_normalized(n) for n in client_venv.installed} == {
        "cryptosignals_client",
        "grpcio",
        "protobuf",
        "googleapis_common_protos",
        "typing_extensions",
    }, client_venv.installed
    probe = f"""
import importlib.util, sys
import cryptosignals.v1.signal_pb2_grpc, cryptosignals_client
assert sys.prefix != sys.base_prefix and sys.prefix == {str(client_venv.python.parent.parent)!r}, sys.prefix
assert cryptosignals.v1.signal_pb2_grpc.__file__.startswith({str(client_venv.site_packages)!r})
for name in {(*SERVER_MODULES, "grpc_tools", "grpc_health", "httpx", "pydantic", "aiohttp")!r}:
    assert importlib.util.find_spec(name) is None, name
print("isolated", len(sys.path))
"""
    done = await _blocking(client_venv.python, "-c", probe, cwd=tmp_path, env=client_venv.env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("isolated")


async def test_a_caller_type_checks_against_the_installed_wheel(client_venv: ClientVenv, tmp_path: Path) -> None:
    """mypy (this venv's) on the fresh venv's packages: the wheel's .pyi files and py.typed are found."""
    for example in ("quickstart.py", "quickstart_aio.py"):
        (tmp_path / example).write_text((CLIENT_DIR / "examples" / example).read_text())
    (tmp_path / "wrong.py").write_text(
        "from cryptosignals.v1 import signal_pb2\n"
        "from cryptosignals_client import aio_channel\n"
        "score: str = signal_pb2.Signal().score\n"
        "aio_channel('localhost:50051', api_key=42)\n"
    )
    # grpc and google.protobuf carry no type hints of their own (types-grpcio, types-protobuf do).
    mypy = (Path(sys.executable).parent / "mypy", "--strict", "--ignore-missing-imports", "--no-incremental")
    done = await _blocking(
        *mypy, "--python-executable", client_venv.python, "quickstart.py", "quickstart_aio.py", "wrong.py", cwd=tmp_path
    )
    errors = [line for line in done.stdout.splitlines() if ": error: " in line]
    assert len(errors) == 2, done.stdout
    assert errors[0].startswith("wrong.py:3: error: Incompatible types in assignment")
    assert errors[1].startswith('wrong.py:4: error: Argument "api_key" to "aio_channel" has incompatible type "int"')


@pytest.fixture(scope="module")
async def keyed_stack(twin: RecordedTwin) -> AsyncIterator[Stack]:
    """The real server (no Envoy: callers talk gRPC to it) with SIGNAL_API_KEYS set."""
    async with running_stack(twin, envoy=False, signal_api_keys=API_KEY) as running:
        yield running


async def _run(venv: ClientVenv, script: Path, target: str, cwd: Path, **env: str) -> tuple[int, str, str]:
    """Run a script in the fresh venv without blocking this loop (the server under test runs on it)."""
    process = await asyncio.create_subprocess_exec(
        str(venv.python),
        str(script),
        target,
        cwd=cwd,
        env=venv.env(**env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


@pytest.mark.parametrize("example", ["quickstart.py", "quickstart_aio.py"])
async def test_the_examples_call_the_server_from_the_fresh_venv(
    client_venv: ClientVenv, keyed_stack: Stack, tmp_path: Path, example: str
) -> None:
    # The script runs from a directory of its own: nothing of the repository is on its path.
    script = tmp_path / example
    script.write_text((CLIENT_DIR / "examples" / example).read_text())
    started = time.monotonic()
    code, out, err = await _run(client_venv, script, keyed_stack.grpc_target, tmp_path, CRYPTOSIGNALS_API_KEY=API_KEY)
    print(f"{example}: {time.monotonic() - started:.2f} s\n{out}")
    assert code == 0, err
    lines = out.splitlines()
    assert re.fullmatch(r"signal BTC (LONG|SHORT|NEUTRAL) score=\d+\.\d.*", lines[0]), lines
    assert re.fullmatch(r"event ETH (LONG|SHORT|NEUTRAL)", lines[1]), lines
    assert lines[2].startswith("refused INVALID_ARGUMENT: ") and "symbol" in lines[2], lines
    assert len(lines) == 3, lines


async def test_without_the_key_the_example_is_told_by_its_status_code(
    client_venv: ClientVenv, keyed_stack: Stack, tmp_path: Path
) -> None:
    script = tmp_path / "quickstart.py"
    script.write_text((CLIENT_DIR / "examples" / "quickstart.py").read_text())
    code, out, err = await _run(client_venv, script, keyed_stack.grpc_target, tmp_path)
    assert code != 0 and out == ""
    assert "UNAUTHENTICATED" in err and "missing API key" in err, err
    _, _, err = await _run(client_venv, script, keyed_stack.grpc_target, tmp_path, CRYPTOSIGNALS_API_KEY="wrong")
    assert "UNAUTHENTICATED" in err and "invalid API key" in err, err


# --- the shipped protos, for other languages -----------------------------------------------------


@pytest.fixture(scope="module")
async def exported_protos(client_venv: ClientVenv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python -m cryptosignals_client.protos protos`, run in the fresh venv, as the docs say."""
    work = tmp_path_factory.mktemp("protos")
    done = await _blocking(
        client_venv.python, "-m", "cryptosignals_client.protos", "protos", cwd=work, env=client_venv.env()
    )
    assert done.returncode == 0, done.stderr
    return work


def test_the_protos_come_out_with_the_google_api_files_they_import(exported_protos: Path) -> None:
    files = sorted(
        str(p.relative_to(exported_protos / "protos")) for p in (exported_protos / "protos").rglob("*.proto")
    )
    ours = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    assert files == sorted(
        [*ours, "google/api/annotations.proto", "google/api/http.proto", "google/api/httpbody.proto"]
    )
    for name in ours:
        assert (exported_protos / "protos" / name).read_bytes() == (PROTO_DIR / name).read_bytes()


# A protoc plugin that writes down what buf asks it: the files to generate and each file's
# go_package after managed mode, i.e. the Go import paths protoc-gen-go would use.
REPORTING_PLUGIN = """#!{python}
import json, sys
from google.protobuf.compiler import plugin_pb2
request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
response = plugin_pb2.CodeGeneratorResponse(supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL)
go_package = {{f.name: f.options.go_package for f in request.proto_file}}
report = {{"generate": sorted(request.file_to_generate), "go_package": go_package}}
response.file.add(name="report.json", content=json.dumps(report))
sys.stdout.buffer.write(response.SerializeToString())
"""


async def test_the_committed_buf_gen_yaml_generates_from_the_shipped_protos_offline(exported_protos: Path) -> None:
    """The documented `buf generate` command on the exported protos, its remote plugins swapped for a
    local one: buf reads the template, compiles every file, applies managed mode, runs the plugin."""
    if not BUF.exists():
        pytest.skip("buf is installed by the dev dependencies (buf-bin): run `make gen`")
    template = yaml.safe_load((CLIENT_DIR / "buf.gen.yaml").read_text())
    remote = [plugin["remote"] for plugin in template["plugins"]]
    assert {r.split(":")[0] for r in remote} == {
        "buf.build/protocolbuffers/go",
        "buf.build/grpc/go",
        "buf.build/bufbuild/es",
    }
    plugin = exported_protos / "protoc-gen-report"
    plugin.write_text(REPORTING_PLUGIN.format(python=sys.executable))
    plugin.chmod(0o755)
    template["plugins"] = [{"local": str(plugin), "out": "out"}]
    (exported_protos / "buf.gen.yaml").write_text(yaml.safe_dump(template))
    done = await _blocking(
        BUF, "generate", "protos", "--template", "buf.gen.yaml", "--path", "protos/cryptosignals", cwd=exported_protos
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((exported_protos / "out" / "report.json").read_text())
    ours = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    assert report["generate"] == ours  # --path: google/api is imported, not generated
    go_package = report["go_package"]
    prefix = next(o["value"] for o in template["managed"]["override"] if o["file_option"] == "go_package_prefix")
    for name in ours:
        assert go_package[name] == f"{prefix}/cryptosignals/v1;cryptosignalsv1", (name, go_package[name])
    # google/api keeps its own Go package (google.golang.org/genproto), as the Go snippet imports it.
    assert (
        go_package["google/api/annotations.proto"]
        == "google.golang.org/genproto/googleapis/api/annotations;annotations"
    )


# --- the helper, against a fake server ------------------------------------------------------------


@dataclass
class FakeApi:
    """A grpc.aio server answering four methods; it records attempts and keys and fails on demand."""

    failures: dict[str, int] = field(default_factory=dict)  # method -> attempts answered UNAVAILABLE first
    delay: float = 0.0  # before every unary answer
    attempts: Counter[str] = field(default_factory=Counter)
    keys: list[str | None] = field(default_factory=list)

    async def _enter(self, method: str, context: grpc.aio.ServicerContext) -> None:
        self.attempts[method] += 1
        self.keys.append(dict(context.invocation_metadata() or ()).get("authorization"))
        if self.attempts[method] <= self.failures.get(method, 0):
            await context.abort(grpc.StatusCode.UNAVAILABLE, "try again")

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        async def get_signal(request: signal_pb2.GetSignalRequest, context: Any) -> signal_pb2.Signal:
            await self._enter("GetSignal", context)
            await asyncio.sleep(self.delay)
            return signal_pb2.Signal(symbol=request.symbol, signal=signal_pb2.LONG)

        async def watch(request: live_pb2.WatchSignalsRequest, context: Any) -> AsyncIterator[live_pb2.SignalEvent]:
            await self._enter("WatchSignals", context)
            await asyncio.sleep(self.delay)
            yield live_pb2.SignalEvent(kind=live_pb2.SIGNAL, symbol=request.symbol)

        async def create(request: alerts_pb2.CreateAlertRequest, context: Any) -> alerts_pb2.CreatedAlert:
            await self._enter("CreateAlert", context)
            return alerts_pb2.CreatedAlert()

        async def list_alerts(request: alerts_pb2.ListAlertsRequest, context: Any) -> alerts_pb2.AlertList:
            await self._enter("ListAlerts", context)
            return alerts_pb2.AlertList()

        unary, stream = grpc.unary_unary_rpc_method_handler, grpc.unary_stream_rpc_method_handler
        return [
            grpc.method_handlers_generic_handler(
                "cryptosignals.v1.SignalService",
                {
                    "GetSignal": unary(
                        get_signal, signal_pb2.GetSignalRequest.FromString, signal_pb2.Signal.SerializeToString
                    )
                },
            ),
            grpc.method_handlers_generic_handler(
                "cryptosignals.v1.LiveService",
                {
                    "WatchSignals": stream(
                        watch, live_pb2.WatchSignalsRequest.FromString, live_pb2.SignalEvent.SerializeToString
                    )
                },
            ),
            grpc.method_handlers_generic_handler(
                "cryptosignals.v1.AlertService",
                {
                    "CreateAlert": unary(
                        create, alerts_pb2.CreateAlertRequest.FromString, alerts_pb2.CreatedAlert.SerializeToString
                    ),
                    "ListAlerts": unary(
                        list_alerts, alerts_pb2.ListAlertsRequest.FromString, alerts_pb2.AlertList.SerializeToString
                    ),
                },
            ),
        ]


@dataclass
class FakeServer:
    api: FakeApi
    port: int
    certificate: bytes | None


@pytest.fixture
async def fake(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[FakeServer]:
    api = FakeApi()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(api.handlers())
    certificate = None
    if getattr(request, "param", "plaintext") == "tls":
        cert, key = make_certificate(tmp_path, 1)
        certificate = cert.read_bytes()
        port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key.read_bytes(), certificate)]))
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield FakeServer(api, port, certificate)
    await server.stop(0)


async def _calls_with_both_channels(fake: FakeServer, **kwargs: Any) -> None:
    """GetSignal and WatchSignals over an asyncio channel, then over a blocking one (in a thread)."""
    host = "localhost" if fake.certificate else "127.0.0.1"
    target = f"{host}:{fake.port}"
    async with aio_channel(target, root_certificates=fake.certificate, **kwargs) as ch:
        assert (
            await signal_pb2_grpc.SignalServiceStub(ch).GetSignal(signal_pb2.GetSignalRequest(symbol="BTC"))
        ).symbol == "BTC"
        events = live_pb2_grpc.LiveServiceStub(ch).WatchSignals(live_pb2.WatchSignalsRequest(symbol="ETH"))
        assert [e.symbol async for e in events] == ["ETH"]

    def blocking() -> None:
        with channel(target, root_certificates=fake.certificate, **kwargs) as ch:
            assert (
                signal_pb2_grpc.SignalServiceStub(ch).GetSignal(signal_pb2.GetSignalRequest(symbol="BTC")).symbol
                == "BTC"
            )
            events = live_pb2_grpc.LiveServiceStub(ch).WatchSignals(live_pb2.WatchSignalsRequest(symbol="ETH"))
            assert [e.symbol for e in events] == ["ETH"]

    await asyncio.to_thread(blocking)


@pytest.mark.parametrize("fake", ["plaintext", "tls"], indirect=True)
async def test_the_key_goes_as_a_bearer_on_every_call_plaintext_or_tls(fake: FakeServer) -> None:
    await _calls_with_both_channels(fake, api_key="k-123")
    assert fake.api.keys == ["Bearer k-123"] * 4
    await _calls_with_both_channels(fake)
    assert fake.api.keys[4:] == [None] * 4


def test_a_key_with_whitespace_is_refused_before_any_call() -> None:
    for bad in ("", " k", "k\n"):
        with pytest.raises(ValueError, match="api_key"):
            channel("127.0.0.1:1", api_key=bad)


async def test_reads_are_retried_on_unavailable_and_alert_writes_are_not(fake: FakeServer) -> None:
    fake.api.failures = {"GetSignal": 2, "WatchSignals": 1, "ListAlerts": 1, "CreateAlert": 1}
    target = f"127.0.0.1:{fake.port}"
    async with aio_channel(target) as ch:
        signal = await signal_pb2_grpc.SignalServiceStub(ch).GetSignal(signal_pb2.GetSignalRequest(symbol="SOL"))
        assert signal.symbol == "SOL"
        events = live_pb2_grpc.LiveServiceStub(ch).WatchSignals(live_pb2.WatchSignalsRequest(symbol="ETH"))
        assert [e.symbol async for e in events] == ["ETH"]
        alerts = alerts_pb2_grpc.AlertServiceStub(ch)
        await alerts.ListAlerts(alerts_pb2.ListAlertsRequest())
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await alerts.CreateAlert(alerts_pb2.CreateAlertRequest(symbol="BTC"))
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert fake.api.attempts == Counter(GetSignal=3, WatchSignals=2, ListAlerts=2, CreateAlert=1)

    # The blocking channel carries the same policy.
    fake.api.attempts.clear()
    fake.api.failures = {"GetSignal": 1, "CreateAlert": 1}

    def blocking() -> None:
        with channel(target) as ch:
            assert (
                signal_pb2_grpc.SignalServiceStub(ch).GetSignal(signal_pb2.GetSignalRequest(symbol="SOL")).symbol
                == "SOL"
            )
            with pytest.raises(grpc.RpcError) as refused:
                alerts_pb2_grpc.AlertServiceStub(ch).CreateAlert(alerts_pb2.CreateAlertRequest(symbol="BTC"))
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

    await asyncio.to_thread(blocking)
    assert fake.api.attempts == Counter(GetSignal=2, CreateAlert=1)


async def test_unary_calls_get_the_default_deadline_and_streams_none(fake: FakeServer) -> None:
    fake.api.delay = 0.8
    target = f"127.0.0.1:{fake.port}"
    async with aio_channel(target, timeout=0.3) as ch:
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await signal_pb2_grpc.SignalServiceStub(ch).GetSignal(signal_pb2.GetSignalRequest(symbol="BTC"))
        assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 0.75
        # A call's own timeout can shorten it (never lengthen it: the shorter of the two applies)...
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await signal_pb2_grpc.SignalServiceStub(ch).GetSignal(
                signal_pb2.GetSignalRequest(symbol="BTC"), timeout=0.05
            )
        assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 0.25
        # ...and a stream outlives the default deadline.
        events = live_pb2_grpc.LiveServiceStub(ch).WatchSignals(live_pb2.WatchSignalsRequest(symbol="ETH"))
        assert [e.symbol async for e in events] == ["ETH"]

    config = service_config()
    timeouts = {entry["name"][0]["service"]: entry.get("timeout") for entry in config["methodConfig"]}
    assert timeouts["cryptosignals.v1.LiveService"] is None
    assert timeouts["cryptosignals.v1.SignalService"] == f"{DEFAULT_TIMEOUT_SECONDS:.3f}s"
    assert "timeout" not in str(service_config(timeout=None))


def _rpcs_of(service: str) -> Iterator[str]:
    for proto in PROTO_DIR.rglob("*.proto"):
        body = re.search(rf"^service {service} \{{(.*?)^\}}", proto.read_text(), re.M | re.S)
        if body:
            yield from re.findall(r"^\s*rpc (\w+)\(", body.group(1), re.M)


def test_every_service_of_the_contract_is_in_the_service_config() -> None:
    services = {s for p in PROTO_DIR.rglob("*.proto") for s in re.findall(r"^service (\w+)", p.read_text(), re.M)}
    config = service_config()
    named = {
        entry_name["service"].removeprefix("cryptosignals.v1.")
        for entry in config["methodConfig"]
        for entry_name in entry["name"]
    }
    assert services == named, "a new service needs its place in cryptosignals_client.service_config()"
    # AlertService mixes writes and a read: only the read is retried. A new RPC there must be placed.
    retried_alerts = [
        name.get("method")
        for entry in config["methodConfig"]
        if "retryPolicy" in entry
        for name in entry["name"]
        if name["service"] == "cryptosignals.v1.AlertService"
    ]
    assert retried_alerts == ["ListAlerts"]
    assert set(_rpcs_of("AlertService")) == {"CreateAlert", "ListAlerts", "DeleteAlert"}
