"""Loopback helpers for servers ctxrec starts on this machine (redis-server, the service)."""
import socket


def free_port() -> int:
  """A TCP port free on 127.0.0.1 right now."""
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
    probe.bind(("127.0.0.1", 0))
    return probe.getsockname()[1]
