"""For the receivers beside it: a unix socket at a path that accepts one connection and takes
one message with up to one fd (SCM_RIGHTS). Node and Bun cannot receive fds, Python can."""
import socket


def receive_fd(path):
    """Listens at path, says "listening" on stdout, and returns (message, fds) of one message."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    print("listening", flush=True)
    conn, _ = srv.accept()
    msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 1)
    return msg, fds
