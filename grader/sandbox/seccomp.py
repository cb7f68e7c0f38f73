"""A seccomp filter that refuses System V IPC (shmget, semget, msgget) inside a bubblewrap sandbox.

A SysV shared-memory segment is counted by no rlimit and outlives the process that made it, so without a
memory cgroup a submission could hold gigabytes beyond its memory limit. Models never need SysV IPC
(torch's shared memory is POSIX, on the sized /dev/shm), so the calls that create such objects fail with
EPERM. Without a way to create one, the other SysV calls have nothing to act on.

The filter is a classic BPF program in the layout bubblewrap's --seccomp reads (struct sock_filter
entries, native byte order). On an architecture not listed here every call is allowed.
"""

from __future__ import annotations

import struct

# struct seccomp_data: int nr, __u32 arch, ...
NR_OFFSET, ARCH_OFFSET = 0, 4
BPF_LD_W_ABS, BPF_JEQ_K, BPF_RET_K, BPF_ALU_AND_K = 0x20, 0x15, 0x06, 0x54
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
EPERM = 1
X32_SYSCALL_BIT = 0x40000000

# Audit architecture -> the numbers of the calls that create SysV IPC objects on it.
REFUSED_CALLS = {
    0xC000003E: (29, 64, 68),  # x86_64 (and x32, once the x32 bit is masked): shmget, semget, msgget
    0x40000003: (117, 393, 395, 399),  # i386: the ipc() multiplexer, semget, shmget, msgget
    0xC00000B7: (186, 190, 194),  # aarch64: msgget, semget, shmget
}


def _instruction(code: int, jump_true: int, jump_false: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jump_true, jump_false, k)


def ipc_filter() -> bytes:
    """The compiled filter: for each known architecture, refuse its IPC-creating calls; allow the rest."""
    program = [_instruction(BPF_LD_W_ABS, 0, 0, ARCH_OFFSET)]
    for arch, calls in REFUSED_CALLS.items():
        # Skip this block (load, mask, the checks, two returns) when the architecture differs; the
        # accumulator then still holds the architecture for the next comparison.
        block = 2 + len(calls) + 2
        program.append(_instruction(BPF_JEQ_K, 0, block, arch))
        program.append(_instruction(BPF_LD_W_ABS, 0, 0, NR_OFFSET))
        program.append(_instruction(BPF_ALU_AND_K, 0, 0, ~X32_SYSCALL_BIT & 0xFFFFFFFF))
        for index, call in enumerate(calls):
            # A match jumps to the refusal right after the remaining checks and the allow.
            program.append(_instruction(BPF_JEQ_K, len(calls) - index, 0, call))
        program.append(_instruction(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
        program.append(_instruction(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM))
    program.append(_instruction(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    return b"".join(program)
