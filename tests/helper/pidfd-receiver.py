#!/usr/bin/env python3
"""A --pidfd-socket for tests: accepts one connection, receives one fd (SCM_RIGHTS), writes
"payload=<message> pid=<the Pid: line of the fd's fdinfo>" to OUT, then, given a signal number,
sends it through the pidfd (pidfd_send_signal). Usage: pidfd-receiver.py SOCKET OUT [SIGNAL]"""
import signal
import sys

from fd_receiver import receive_fd

path, out = sys.argv[1], sys.argv[2]
sig = int(sys.argv[3]) if len(sys.argv) > 3 else 0
msg, fds = receive_fd(path)
pid = "none"
if fds:
    with open(f"/proc/self/fdinfo/{fds[0]}") as f:
        for line in f:
            if line.startswith("Pid:"):
                pid = line.split()[1]
    if sig:
        signal.pidfd_send_signal(fds[0], sig)
with open(out, "w") as f:
    f.write(f"payload={msg.decode()} pid={pid}\n")
