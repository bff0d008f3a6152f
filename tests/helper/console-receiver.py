#!/usr/bin/env python3
"""A console socket for tests: accepts one connection, receives the pty master (SCM_RIGHTS),
writes "payload=<message>" then everything read from the master to OUT, until EIO/EOF.
Usage: console-receiver.py SOCKET OUT"""
import os
import sys

from fd_receiver import receive_fd

path, out = sys.argv[1], sys.argv[2]
msg, fds = receive_fd(path)
with open(out, "wb") as f:
    f.write(b"payload=" + msg + b"\n")
    f.flush()
    if not fds:
        sys.exit(1)
    master = fds[0]
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        f.write(data)
        f.flush()
