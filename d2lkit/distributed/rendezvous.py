"""A rendezvous for torch's elastic agent whose store listens on the loopback interface only.

torchrun's ``static`` and ``c10d`` rendezvous create a ``TCPStore`` server that listens on every
interface (``*:<port>``), whatever host name it is given: for a launch confined to one machine,
that is a port open to the network for the length of the run. Here the launcher binds a socket to
127.0.0.1 itself, on a port the operating system chooses (so a busy port cannot block a launch),
and hands it to the store (``master_listen_fd``). The agent and its workers share this store
(``use_agent_store``), and the workers' gloo sockets are bound to the loopback interface too.
"""

from __future__ import annotations

import datetime
import os
import socket

import torch.distributed as dist
from torch.distributed.elastic.rendezvous import (
    RendezvousHandler,
    RendezvousInfo,
    RendezvousParameters,
    RendezvousStoreInfo,
)
from torch.distributed.elastic.rendezvous.registry import handler_registry

__all__ = ["BACKEND", "HOST", "LoopbackRendezvous", "loopback_interface"]

HOST = "127.0.0.1"
BACKEND = "d2lkit-loopback"


class LoopbackRendezvous(RendezvousHandler):
    """One node, one attempt: the store of a launch on this machine, on 127.0.0.1 only."""

    def __init__(self, params: RendezvousParameters) -> None:
        self.run_id = params.run_id
        timeout = datetime.timedelta(seconds=float(params.get("timeout", 30)))
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind((HOST, 0))
            listener.listen(128)
            self.port = listener.getsockname()[1]
        except BaseException:
            listener.close()
            raise
        # The store owns the socket from now on, and closes it when it is destroyed.
        fd = listener.detach()
        try:
            self.store = dist.TCPStore(HOST, self.port, None, is_master=True,
                                       wait_for_workers=False, timeout=timeout, multi_tenant=True,
                                       master_listen_fd=fd)
        except BaseException:
            os.close(fd)
            raise

    def get_backend(self) -> str:
        return BACKEND

    @property
    def use_agent_store(self) -> bool:
        return True

    def next_rendezvous(self) -> RendezvousInfo:
        return RendezvousInfo(dist.PrefixStore(self.run_id, self.store), 0, 1,
                              RendezvousStoreInfo(HOST, self.port))

    def is_closed(self) -> bool:
        return False

    def set_closed(self) -> None:
        pass

    def num_nodes_waiting(self) -> int:
        return 0

    def get_run_id(self) -> str:
        return self.run_id

    def shutdown(self) -> bool:
        """Nothing to do: the store stops listening when the last reference to it goes."""
        return True


def loopback_interface() -> str:
    """Return the name of the loopback interface (``lo`` on Linux, ``lo0`` on macOS)."""
    for _, name in socket.if_nameindex():
        if name.startswith("lo"):
            return name
    return "lo"


handler_registry.register(BACKEND, LoopbackRendezvous)
