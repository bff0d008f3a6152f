#!/usr/bin/env python3
"""A --pidfd-socket for tests: accepts one connection, receives one fd (SCM_RIGHTS), writes
"payload=<message> pid=<the Pid: line of the fd's fdinfo>" to OUT, then, given a signal number,
sends it through the pidfd (pidfd_send_signal). Node and Bun cannot receive fds, Python can.
Usage: pidfd-receiver.py SOCKET OUT [SIGNAL]"""
import signal
import socket
import sys

path, out = sys.argv[1], sys.argv[2]
sig = int(sys.argv[3]) if len(sys.argv) > 3 else 0
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(1)
print("listening", flush=True)
conn, _ = srv.accept()
msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 1)
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
