"""Sandbox containers never outlive their run: each is registered by name before it is created and removed on
exit, Ctrl-C or SIGTERM; those of a grader killed outright are leftovers for `make sandbox-clean`.
"""

from __future__ import annotations

import atexit
import functools
import os
import signal
import socket
import threading

from grader.sandbox.base import SandboxUnavailable

LABEL = "lab8-grader"
OWNER_PID_LABEL = "lab8-grader.pid"
OWNER_HOST_LABEL = "lab8-grader.host"

live_containers: set[str] = set()
_handlers_installed = False
_install_lock = threading.Lock()


def docker_sdk():
    try:
        import docker
    except ImportError as error:
        raise SandboxUnavailable("the Docker SDK for Python is missing: pip install 'docker>=7'") from error
    return docker


def owner_labels() -> dict[str, str]:
    return {LABEL: "1", OWNER_PID_LABEL: str(os.getpid()), OWNER_HOST_LABEL: socket.gethostname()}


def remove_live_containers() -> None:
    """Removes the containers this process started and has not removed yet.

    Runs from signal handlers too, so it uses a client of its own: the interrupted thread may be
    holding a connection of the backend's client in the middle of a request.
    """
    if not live_containers:
        return
    try:
        client = docker_sdk().from_env(timeout=30)
    except Exception:  # noqa: BLE001 - nothing more can be done at exit without an engine
        return
    try:
        for container_id in list(live_containers):
            remove_container(client, container_id)
    finally:
        client.close()


def remove_container(client, container_id: str) -> None:
    from docker.errors import APIError, NotFound

    try:
        client.api.remove_container(container_id, force=True, v=True)
    except NotFound:
        pass
    except APIError as error:
        # A removal already in progress (another thread, the signal handler) is as good as done.
        if "already in progress" not in str(error):
            raise
    live_containers.discard(container_id)


def _on_signal(number: int, frame, previous) -> None:
    remove_live_containers()
    if callable(previous):
        previous(number, frame)
    elif previous != signal.SIG_IGN:
        # The default action: die of the same signal, so the exit status still tells what happened.
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)


def install_cleanup_handlers() -> None:
    """Once per process: atexit, plus SIGINT/SIGTERM handlers chained in front of the existing ones."""
    global _handlers_installed
    with _install_lock:
        if _handlers_installed:
            return
        _handlers_installed = True
        atexit.register(remove_live_containers)
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread; atexit still covers a clean exit
        for number in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(number)
            signal.signal(number, functools.partial(_on_signal, previous=previous))


def remove_leftover_containers(client=None, *, include_live_owners: bool = False) -> list[str]:
    """Removes sandbox containers whose grader process is gone (killed with SIGKILL, a power cut).

    Containers of graders still running on this host are left alone unless include_live_owners,
    so two graders can share an engine. Returns the names of the removed containers.
    """
    own_client = client is None
    client = client or docker_sdk().from_env(timeout=30)
    removed = []
    try:
        for container in client.containers.list(all=True, filters={"label": LABEL}):
            labels = container.labels or {}
            if include_live_owners or not _owner_alive(labels):
                remove_container(client, container.id)
                removed.append(container.name)
    finally:
        if own_client:
            client.close()
    return removed


def _owner_alive(labels: dict[str, str]) -> bool:
    if labels.get(OWNER_HOST_LABEL) != socket.gethostname():
        return True  # another machine's grader: not ours to judge
    try:
        pid = int(labels.get(OWNER_PID_LABEL, ""))
        if pid <= 0:
            return False
        os.kill(pid, 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True  # alive, owned by another user
    return True
