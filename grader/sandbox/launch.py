"""Applies a sandbox's limits to itself, then becomes the sandbox command (exec).

Run as `python -I -S launch.py SETTINGS_JSON -- COMMAND...` by the local backend. The grader
never forks itself to set limits: a fork of a process that runs threads (BLAS, torch, the
answer scorer) can deadlock in the child. This small single-threaded process does the work a
`preexec_fn` would do, then replaces itself with the command. Standard library only.

SETTINGS_JSON: {"rlimits": {"RLIMIT_CPU": n, ...}, "cgroup": path or null, "unshare_network": bool,
"bwrap_seccomp_hex": a compiled seccomp filter, given to bubblewrap (the command) as `--seccomp FD`}
"""

import ctypes
import json
import os
import sys

CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000


def join_cgroup(path):
    """Everything the command starts is then counted by the group's pids limit."""
    with open(os.path.join(path, "cgroup.procs"), "w") as stream:
        stream.write(str(os.getpid()))


def unshare_network():
    """An empty network namespace, where the kernel allows it (Linux only); best effort otherwise."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        flags = CLONE_NEWNET if os.geteuid() == 0 else CLONE_NEWUSER | CLONE_NEWNET
        libc.unshare(flags)
    except (OSError, AttributeError):
        pass


def set_limits(rlimits):
    import resource

    for name, value in rlimits.items():
        resource.setrlimit(getattr(resource, name), (value, value))


def with_seccomp_filter(command, program):
    """bubblewrap reads the filter from a descriptor it inherits: a pipe holding the whole program."""
    read_end, write_end = os.pipe()
    os.write(write_end, program)  # a few hundred bytes: far below a pipe's buffer
    os.close(write_end)
    os.set_inheritable(read_end, True)
    return [command[0], "--seccomp", str(read_end), *command[1:]]


def main(argv):
    settings, separator, command = argv[0], argv[1], argv[2:]
    if separator != "--" or not command:
        sys.stderr.write("usage: launch.py SETTINGS_JSON -- COMMAND...\n")
        return 2
    settings = json.loads(settings)
    if settings.get("cgroup"):
        join_cgroup(settings["cgroup"])
    if settings.get("unshare_network"):
        unshare_network()
    set_limits(settings.get("rlimits", {}))
    if settings.get("bwrap_seccomp_hex"):
        command = with_seccomp_filter(command, bytes.fromhex(settings["bwrap_seccomp_hex"]))
    os.execv(command[0], command)
    return 127  # not reached: execv raises or never returns


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
