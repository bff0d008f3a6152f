#!/usr/bin/env python3
"""A console socket for tests: accepts one connection, receives the pty master (SCM_RIGHTS),
writes "payload=<message>" then everything read from the master to OUT, until EIO/EOF.
Node and Bun cannot receive fds, Python can. Usage: console-receiver.py SOCKET OUT"""
import os
import socket
import sys

path, out = sys.argv[1], sys.argv[2]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(1)
print("listening", flush=True)
conn, _ = srv.accept()
msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 1)
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
