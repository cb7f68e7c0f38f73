"""The Docker sandbox against the real engine and the real image (make sandbox-image OFFLINE=1).

Nothing about Docker is mocked. Without an engine or image these tests skip, except under CI=true,
where a missing engine or image is a failure: CI is meant to exercise them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import sandbox_containers, sandbox_job

from grader.sandbox.base import SandboxUnavailable
from grader.sandbox.docker import DockerBackend
from grader.sandbox.docker_cleanup import OWNER_PID_LABEL, remove_leftover_containers
from grader.sandbox.gpus import host_has_nvidia_gpu
from grader.sandbox.local import LocalBackend
from grader.sandbox.protocol import SandboxJob

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[1]
SECRET_ENV = "LAB8_TEST_SECRET"

TINY_MODEL = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(torch.relu(self.conv(x))), 1))
"""


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the Docker tests: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def engine():
    try:
        import docker

        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as error:  # noqa: BLE001 - any failure here means there is no usable engine
        _unavailable(f"no Docker engine: {error}")
    yield client
    client.close()


@pytest.fixture(scope="module")
def backend(engine):
    backend = DockerBackend()
    try:
        backend.check_available()
    except SandboxUnavailable as error:
        _unavailable(str(error))
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def test_data(tmp_path_factory):
    """20 random images, and beside them a labels file the sandbox must never see."""
    folder = tmp_path_factory.mktemp("split")
    rng = np.random.default_rng(8)
    images = folder / "images.npy"
    np.save(images, rng.integers(0, 256, size=(20, 32, 32, 3), dtype=np.uint8))
    token = f"SECRET-labels-{os.getpid()}-{time.time_ns()}"
    labels = folder / f"{token}.npy"
    np.save(labels, rng.integers(0, 10, size=20))
    return images, labels, token


def make_submission(folder: Path, model_source: str) -> Path:
    """model.py from source, and a state_dict of the tiny net (hostile sources define the same Net)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(textwrap.dedent(model_source))
    namespace: dict = {}
    exec(compile(TINY_MODEL, "tiny", "exec"), namespace)
    torch.manual_seed(0)
    torch.save(namespace["Net"]().state_dict(), folder / "weights.pth")
    return folder


def make_job(submission: Path, images: Path, **limits) -> SandboxJob:
    return sandbox_job(submission, images, device="auto", **{"wall_clock_seconds": 120, **limits})


@pytest.fixture(autouse=True)
def no_container_left_behind(request):
    yield
    if "backend" in request.fixturenames or "engine" in request.fixturenames:
        assert sandbox_containers() == [], "a sandbox container outlived its test"


# --- a well-behaved submission ------------------------------------------------------------


def test_tiny_model_gives_logits_from_a_fresh_container(backend, test_data, tmp_path):
    images, _, _ = test_data
    outcome = backend.run(make_job(make_submission(tmp_path / "tiny", TINY_MODEL), images))

    assert outcome.failure is None, outcome.failure
    assert outcome.logits.shape == (20, 10)
    assert outcome.backend == "docker" and outcome.isolation == "docker"
    assert outcome.image_digest.startswith("sha256:")
    assert outcome.meta.device  # "cpu" here; the GPU's name on a GPU server
    assert outcome.meta.torch_version.split("+")[0] == torch.__version__.split("+")[0]


def test_docker_and_local_backends_give_the_same_logits(backend, test_data, tmp_path):
    images, _, _ = test_data
    job = make_job(make_submission(tmp_path / "tiny", TINY_MODEL), images).model_copy(update={"device": "cpu"})
    in_docker = backend.run(job)
    local = LocalBackend().run(job)

    assert in_docker.failure is None and local.failure is None, (in_docker.failure, local.failure)
    np.testing.assert_allclose(in_docker.logits, local.logits, rtol=0, atol=1e-5)


def test_container_runs_unprivileged_with_no_core_dumps(backend, test_data, tmp_path):
    probe = """
    import json, os, resource
    status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\\t" in line)
    raise RuntimeError("PROBE" + json.dumps({
        "uid": os.getuid(),
        "cap_eff": status["CapEff"].strip(),
        "no_new_privs": status["NoNewPrivs"].strip(),
        "core": resource.getrlimit(resource.RLIMIT_CORE)[1],
        "fsize": resource.getrlimit(resource.RLIMIT_FSIZE)[1],
        "root_writable": os.access("/", os.W_OK),
    }) + "PROBE")
    """
    outcome = backend.run(make_job(make_submission(tmp_path / "probe", probe), test_data[0], file_size_mb=32))
    found = json.loads(outcome.failure.split("PROBE")[1])

    assert found["uid"] != 0
    assert int(found["cap_eff"], 16) == 0
    assert found["no_new_privs"] == "1"
    assert found["core"] == 0
    assert found["fsize"] == 32 * 2**20
    assert found["root_writable"] is False


def test_gpu_is_one_explicit_device_request_for_the_chosen_devices(backend, test_data, tmp_path):
    job = make_job(make_submission(tmp_path / "tiny", TINY_MODEL), test_data[0])
    chosen = DockerBackend(gpu_device_ids=["1", "3"])
    chosen.check_available()
    options = chosen._container_options(job, tmp_path, use_gpu=True)
    everything = backend._container_options(job, tmp_path, use_gpu=True)
    on_cpu = backend._container_options(job, tmp_path, use_gpu=False)

    assert [request["DeviceIDs"] for request in options["device_requests"]] == [["1", "3"]]
    assert [request["Count"] for request in everything["device_requests"]] == [-1]
    assert everything["device_requests"][0]["Capabilities"] == [["gpu"]]
    assert "device_requests" not in on_cpu and "privileged" not in options
    pinned = backend._container_options(job.model_copy(update={"gpu": "2"}), tmp_path, use_gpu=True)
    assert [request["DeviceIDs"] for request in pinned["device_requests"]] == [["2"]]


@pytest.mark.skipif(not host_has_nvidia_gpu(), reason="needs an NVIDIA GPU and the NVIDIA Container Toolkit")
def test_cuda_run_reports_the_gpu_and_agrees_with_the_cpu(backend, test_data, tmp_path):
    job = make_job(make_submission(tmp_path / "tiny", TINY_MODEL), test_data[0])
    on_gpu = backend.run(job.model_copy(update={"device": "cuda"}))
    on_cpu = backend.run(job.model_copy(update={"device": "cpu"}))

    assert on_gpu.failure is None, on_gpu.failure
    assert on_gpu.meta.device != "cpu"
    # cuDNN may use TF32 for convolutions: close, not bit-equal.
    np.testing.assert_allclose(on_gpu.logits, on_cpu.logits, rtol=0, atol=1e-3)


# --- hostile submissions: each is contained and reported with its reason ---------------------


def test_network_is_unreachable(backend, test_data, tmp_path):
    """A listener on the host's loopback: reachable only if the container shared the host's network."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        hostile = f"""
        import socket
        interfaces = sorted(name for _, name in socket.if_nameindex())
        if interfaces != ["lo"]:
            raise RuntimeError(f"LEAK: network interfaces {{interfaces}}")
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=3)
        except OSError as error:
            raise RuntimeError(f"no network: {{error}}")
        raise RuntimeError("LEAK: reached the host")
        """
        outcome = backend.run(make_job(make_submission(tmp_path / "net", hostile), test_data[0]))
        with pytest.raises(BlockingIOError):
            listener.accept()

    assert outcome.failure_kind == "import"
    assert "no network" in outcome.failure and "LEAK" not in outcome.failure


def test_labels_and_host_secrets_are_out_of_reach(backend, test_data, tmp_path, monkeypatch):
    images, labels, token = test_data
    monkeypatch.setenv(SECRET_ENV, token)
    hostile = f"""
    import os
    token, seen = {token!r}, 0
    for root, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/proc", "/sys", "/dev")]
        for name in files:
            seen += 1
            if token in name:
                raise RuntimeError("LEAK: found " + os.path.join(root, name))
    for path in ("/proc/1/environ", "/proc/self/environ"):
        try:
            if token.encode() in open(path, "rb").read():
                raise RuntimeError("LEAK: the secret is in " + path)
        except PermissionError:
            pass
    if token in str(os.environ):
        raise RuntimeError("LEAK: the grader's environment came through")
    if os.path.exists({str(labels)!r}) or os.path.exists({str(REPO / "grader")!r}):
        raise RuntimeError("LEAK: host paths are visible")
    raise RuntimeError(f"no labels among {{seen}} files")
    """
    outcome = backend.run(make_job(make_submission(tmp_path / "snoop", hostile), images))

    assert outcome.failure_kind == "import"
    assert "no labels among" in outcome.failure and "LEAK" not in outcome.failure


def test_memory_past_the_limit_is_reported_as_memory(backend, test_data, tmp_path):
    hostile = """
    import torch
    hoard = [torch.ones(2**26) for _ in range(64)]  # 16 GB, touched page by page
    """
    outcome = backend.run(make_job(make_submission(tmp_path / "hog", hostile), test_data[0], memory_mb=512))

    assert outcome.failure_kind == "memory"
    assert "512 MB" in outcome.failure


def test_sleeping_past_the_timeout_is_killed(backend, test_data, tmp_path):
    hostile = "import time\ntime.sleep(600)\n"
    started = time.monotonic()
    outcome = backend.run(make_job(make_submission(tmp_path / "sleepy", hostile), test_data[0], wall_clock_seconds=10))

    assert outcome.failure_kind == "timeout"
    assert "10 s" in outcome.failure
    assert time.monotonic() - started < 40


def test_fork_bomb_stops_at_the_process_limit(backend, test_data, tmp_path):
    hostile = """
    import os, time
    made = 0
    try:
        while made < 10_000:
            if os.fork() == 0:
                time.sleep(3600)
                os._exit(0)
            made += 1
    except OSError as error:
        raise RuntimeError(f"fork bomb stopped after {made} processes: {error}")
    raise RuntimeError(f"LEAK: fork bomb made {made} processes")
    """
    job = make_job(make_submission(tmp_path / "bomb", hostile), test_data[0], processes=64, wall_clock_seconds=60)
    outcome = backend.run(job)

    assert outcome.failure_kind == "import"
    assert "fork bomb stopped after" in outcome.failure and "LEAK" not in outcome.failure
    assert int(outcome.failure.split("after ")[1].split()[0]) < 64


def test_filling_the_disk_stops_at_the_scratch_size(backend, test_data, tmp_path):
    hostile = """
    import os
    for path in ("/evil", "/submission/evil", "/opt/grader/runner.py", "/data/evil"):
        try:
            open(path, "w").write("x")
        except OSError:
            continue
        raise RuntimeError("LEAK: wrote " + path)
    with open(os.path.join(os.environ["HOME"], "fill"), "wb") as stream:
        for _ in range(100_000):
            stream.write(b"x" * 2**20)
            stream.flush()
    """
    job = make_job(make_submission(tmp_path / "filler", hostile), test_data[0], disk_mb=64, file_size_mb=1024)
    outcome = backend.run(job)

    assert outcome.failure_kind == "disk"
    assert "No space left on device" in outcome.failure and "LEAK" not in outcome.failure


def test_huge_output_is_cut_off(backend, test_data, tmp_path):
    hostile = """
    try:
        open("/output/one-big-file", "wb").write(b"x" * 48 * 2**20)
    except OSError:
        pass
    else:
        raise RuntimeError("LEAK: wrote a file past the file-size limit")
    count = 0
    while True:
        open(f"/output/junk-{count}", "wb").write(b"x" * 8 * 2**20)
        count += 1
    """
    job = make_job(make_submission(tmp_path / "flood", hostile), test_data[0], disk_mb=64, file_size_mb=32)
    outcome = backend.run(job)

    assert outcome.failure_kind == "disk"
    assert "more than the 64 MB disk limit" in outcome.failure


# --- the grader itself: interrupted, killed, misconfigured -----------------------------------

GRADER_SCRIPT = """
import sys
from grader.sandbox.docker import DockerBackend
from grader.sandbox.protocol import SandboxJob

DockerBackend().run(SandboxJob.model_validate_json(sys.argv[1]))
"""


def start_grader(job: SandboxJob) -> subprocess.Popen:
    """A grader process running one sleeping submission, returned once its container is up."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-c", GRADER_SCRIPT, job.model_dump_json()], env=env, cwd=REPO)
    deadline = time.monotonic() + 120
    while not sandbox_containers(**{OWNER_PID_LABEL: str(process.pid)}):
        assert process.poll() is None, "the grader exited before starting its container"
        assert time.monotonic() < deadline, "no container started"
        time.sleep(0.2)
    return process


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_grader_removes_its_container(backend, test_data, tmp_path, number):
    job = make_job(make_submission(tmp_path / "sleepy", "import time\ntime.sleep(600)\n"), test_data[0])
    process = start_grader(job)
    process.send_signal(number)

    assert process.wait(timeout=60) != 0
    assert sandbox_containers(**{OWNER_PID_LABEL: str(process.pid)}) == []


def test_containers_of_a_killed_grader_are_removed_as_leftovers(backend, test_data, tmp_path):
    job = make_job(make_submission(tmp_path / "sleepy", "import time\ntime.sleep(600)\n"), test_data[0])
    process = start_grader(job)
    process.kill()
    process.wait(timeout=60)
    orphans = sandbox_containers(**{OWNER_PID_LABEL: str(process.pid)})
    assert len(orphans) == 1  # SIGKILL leaves no chance to clean up

    removed = remove_leftover_containers()

    assert len(removed) == 1
    assert sandbox_containers(**{OWNER_PID_LABEL: str(process.pid)}) == []


def test_missing_image_says_how_to_build_it(engine):
    with pytest.raises(SandboxUnavailable, match=r"make sandbox-image"):
        DockerBackend(image="lab8-grader-sandbox:no-such-tag").check_available()


def test_the_rubrics_image_is_the_one_run(engine, monkeypatch):
    from grader.sandbox.base import get_backend

    monkeypatch.delenv("GRADER_SANDBOX_IMAGE", raising=False)
    with pytest.raises(SandboxUnavailable, match="lab8-grader-sandbox:named-in-the-rubric is missing"):
        get_backend("docker", image="lab8-grader-sandbox:named-in-the-rubric")
