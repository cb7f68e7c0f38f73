"""A warm sandbox: imports the runner (and with it torch) once, then runs each submission in a forked child.

Started by the host (grader/sandbox/warm.py) inside a bubblewrap sandbox with the same flags as a cold
run, but with a per-worker inbox at /inbox instead of one student's files. Standard library plus what
runner.py imports (numpy, torch); it never runs a tensor operation itself, so it stays single-threaded.

Protocol, one JSON object per line: the zygote writes {"ready": true} once torch is imported; then for
each line the host writes on stdin ({"name": job folder in /inbox, "argv": runner arguments, "env",
"rlimits", "tmpfs_mb": {path: size}}) it answers {"exit": status, "isolated": bool}, status as a shell reports
it (128 + signal), isolated false when a step below failed before the submission could run. Anything it
cannot do is {"error": reason}. Either way the host then discards this zygote and runs the student cold.

Each submission gets, in its child:
- a user namespace of its own (the zygote has no capabilities; this gives the child just enough to mount),
  a mount namespace, an IPC namespace and a pid namespace; the root and /dev it inherits are read-only
  (sealed by bubblewrap), so nothing one student does there reaches the next;
- fresh random states for Python, numpy and torch;
- fresh sized tmpfs on /scratch, /tmp and /dev/shm, its own submission and images read-only, its own
  output folder, and the inbox covered by an empty read-only tmpfs;
- then no capabilities at all (bounding set, ambient, effective, permitted), no_new_privs and the rlimits,
  before the runner imports model.py. The pid namespace's init waits for the runner and exits with it,
  and the kernel then kills every process the submission left behind.
"""

import ctypes
import json
import os
import re
import resource
import sys
import threading
import traceback

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID = 0x00020000, 0x08000000, 0x10000000, 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x20, 0x1000, 0x4000, 0x40000
# statvfs flags of a mount that a read-only remount must repeat: the kernel refuses to clear locked ones.
KEPT_MOUNT_FLAGS = {os.ST_NOSUID: MS_NOSUID, os.ST_NODEV: MS_NODEV, os.ST_NOEXEC: MS_NOEXEC}
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 4, 24, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
LINUX_CAPABILITY_VERSION_3 = 0x20080522
SIGKILL = 9
JOB_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
INBOX = "/inbox"
RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runner.py")

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]


class IsolationError(Exception):
    """A step that makes the child's sandbox failed: the child must not run the submission."""


def _check(result, what):
    if result != 0:
        error = ctypes.get_errno()
        raise IsolationError(f"{what}: {os.strerror(error)}")


def _mount(source, target, fstype, flags, data=None):
    encode = lambda text: None if text is None else text.encode()  # noqa: E731
    _check(libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data)), f"mount {target}")


# --- the child's view of the world ----------------------------------------------------------------


def enter_namespaces():
    """A user namespace mapping only our own ids, and mount, IPC and pid namespaces owned by it."""
    uid, gid = os.getuid(), os.getgid()
    _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWPID), "unshare")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as stream:
            stream.write(text)


def bind(source, target, read_only):
    _mount(source, target, None, MS_BIND | MS_REC)
    if read_only:
        kept = 0
        flags = os.statvfs(target).f_flag
        for statvfs_flag, mount_flag in KEPT_MOUNT_FLAGS.items():
            if flags & statvfs_flag:
                kept |= mount_flag
        _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | kept)


def _mount_points_under(folder):
    """The topmost mount points inside `folder` (e.g. a Python installed under /tmp, bound by bwrap)."""
    points = []
    with open("/proc/self/mountinfo") as stream:
        for entry in stream:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), entry.split()[4])
            if point.startswith(folder.rstrip("/") + "/"):
                points.append(point)
    return [p for p in sorted(points) if not any(p.startswith(q + "/") for q in points if q != p)]


def fresh_tmpfs(path, size_mb):
    """A new sized tmpfs on `path`; the read-only binds that lay inside it (a CI checkout's Python under
    /tmp) are put back on top, reached through descriptors opened before the old view was covered."""
    kept = [(point, os.open(point, os.O_PATH)) for point in _mount_points_under(path)]
    _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={int(size_mb)}m,mode=0755")
    for point, descriptor in kept:
        os.makedirs(point, exist_ok=True)
        bind(f"/proc/self/fd/{descriptor}", point, read_only=True)
        os.close(descriptor)


def mount_view(job_dir, tmpfs_mb):
    """Only this job's files, fresh in-memory folders, and the inbox hidden under an empty read-only tmpfs."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing mounted here reaches the zygote
    bind(os.path.join(job_dir, "submission"), "/submission", read_only=True)
    bind(os.path.join(job_dir, "data"), "/data", read_only=True)
    bind(os.path.join(job_dir, "output"), "/output", read_only=False)
    for path, size_mb in tmpfs_mb.items():
        fresh_tmpfs(path, size_mb)
    _mount("tmpfs", INBOX, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, "size=4k,mode=0")


def drop_privileges():
    """No capability can come back: bounding and ambient sets cleared, no_new_privs, then capset to nothing."""
    _check(libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient capabilities")
    with open("/proc/sys/kernel/cap_last_cap") as stream:
        last_capability = int(stream.read())
    for capability in range(last_capability + 1):
        _check(libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0), f"drop capability {capability}")
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    header = (ctypes.c_uint32 * 2)(LINUX_CAPABILITY_VERSION_3, 0)
    _check(libc.capset(header, (ctypes.c_uint32 * 6)()), "capset")
    with open("/proc/self/status") as stream:
        status = stream.read()
    for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        if int(re.search(rf"^{field}:\s*([0-9a-f]+)", status, re.M).group(1), 16) != 0:
            raise IsolationError(f"{field} is not empty after dropping capabilities")


def set_limits(rlimits):
    for name, value in rlimits.items():
        resource.setrlimit(getattr(resource, name), (value, value))


# --- the three processes of one job ---------------------------------------------------------------


def shell_status(wait_status):
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


def reseed(runner):
    """Every child would start from the zygote's random states: each gets fresh ones."""
    import random

    seed = int.from_bytes(os.urandom(8), "little") >> 1
    random.seed(seed)
    runner.np.random.seed(seed % 2**32)
    runner.torch.manual_seed(seed)


def run_submission(runner, job):
    """The student's process: limits, its environment, then the runner as a cold sandbox would start it."""
    _check(libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "dumpable")  # its own /proc entries, as in a cold run
    reseed(runner)
    set_limits(job["rlimits"])
    os.environ.clear()
    os.environ.update(job["env"], PWD="/scratch")  # as bubblewrap's --chdir leaves it in a cold run
    os.chdir("/scratch")
    sys.argv = [RUNNER, *job["argv"]]
    runner.main_and_exit(job["argv"])


def namespace_init(runner, job):
    """Pid 1 of the job's pid namespace: when it exits, the kernel kills everything the submission started."""
    pid = os.fork()
    if pid == 0:
        try:
            run_submission(runner, job)
        except BaseException:  # noqa: BLE001 - the runner reports its own failures; this is before it started
            traceback.print_exc()
        finally:
            os._exit(1)
    return shell_status(os.waitpid(pid, 0)[1])


def job_child(runner, job, isolated):
    """Forked by the zygote: its own output, namespaces, mounts and no privileges, then the namespace's init.

    `isolated` is a pipe to the zygote, told once every step succeeded: a submission's own exit status can
    never pass for a failure of the isolation."""
    _check(libc.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), "parent-death signal")
    job_dir = os.path.join(INBOX, job["name"])
    stdout = os.open(os.path.join(job_dir, "stdout.log"), os.O_WRONLY | os.O_APPEND)
    stderr = os.open(os.path.join(job_dir, "stderr.log"), os.O_WRONLY | os.O_APPEND)
    null = os.open("/dev/null", os.O_RDONLY)
    for source, target in ((null, 0), (stdout, 1), (stderr, 2)):
        os.dup2(source, target)
    # The control pipe and everything else the zygote holds.
    os.closerange(3, isolated)
    os.closerange(isolated + 1, 65536)
    enter_namespaces()
    mount_view(job_dir, job["tmpfs_mb"])
    drop_privileges()
    # The submission shares this uid and namespace: without this it could write into this process's memory
    # (/proc/PID/mem), and from here signal the zygote. Its own process sets itself dumpable again.
    _check(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "not dumpable")
    os.write(isolated, b"1")
    os.close(isolated)
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            _check(libc.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), "parent-death signal")
            status = namespace_init(runner, job)
        except BaseException:  # noqa: BLE001 - reported in the job's stderr; the host reads the status
            traceback.print_exc()
        finally:
            os._exit(status)
    return shell_status(os.waitpid(pid, 0)[1])


def single_threaded():
    """Forking a process that runs threads can deadlock the child: the zygote must hold only its main thread."""
    return threading.active_count() == 1 and len(os.listdir("/proc/self/task")) == 1


def run_job(runner, job):
    if not single_threaded():
        return {"error": "the zygote runs more than one thread"}
    if not JOB_NAME.match(str(job.get("name", ""))):
        return {"error": "bad job name"}
    isolated_read, isolated_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(isolated_read)
            status = job_child(runner, job, isolated_write)
        except BaseException:  # noqa: BLE001 - reported in the job's stderr; the pipe says isolation failed
            traceback.print_exc()
        finally:
            os._exit(status)
    os.close(isolated_write)
    status = shell_status(os.waitpid(pid, 0)[1])
    isolated = os.read(isolated_read, 1) == b"1"
    os.close(isolated_read)
    return {"exit": status, "isolated": isolated}


def load_runner():
    import importlib.util

    spec = importlib.util.spec_from_file_location("runner", RUNNER)
    module = importlib.util.module_from_spec(spec)
    sys.modules["runner"] = module
    spec.loader.exec_module(module)
    return module


def serve(control_in, control_out):
    runner = load_runner()

    def say(message):
        control_out.write(json.dumps(message).encode() + b"\n")
        control_out.flush()

    say({"ready": single_threaded()})
    for line in control_in:
        try:
            job = json.loads(line)
        except ValueError:
            say({"error": "unreadable job"})
            continue
        say(run_job(runner, job))


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
