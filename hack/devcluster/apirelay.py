"""Pods reach the API server through a TCP relay from their bridge's gateway address to the API
server on loopback. The API server itself listens on loopback only, so nothing off this machine
can reach it; TLS passes through untouched. The real node runs it as a process of its own
(`python -m devcluster.apirelay LISTEN TARGET`), on the address the API server advertises as
the `kubernetes` Service's endpoint."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import socket
import threading

log = logging.getLogger(__name__)
BUFFER = 64 * 1024


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(BUFFER):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s, how in ((sink, socket.SHUT_WR), (source, socket.SHUT_RD)):
            with contextlib.suppress(OSError):
                s.shutdown(how)


class ApiRelay:
    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(listen, reuse_port=False)
        self.server.settimeout(0.5)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, name="api-relay", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError as exc:
            log.warning("API relay: cannot reach %s:%s: %s", *self.target, exc)
            client.close()
            return
        upstream.settimeout(None)
        client.settimeout(None)
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join()
        client.close()
        upstream.close()

    def stop(self) -> None:
        self.stopping.set()
        self.server.close()
        self.thread.join(timeout=2)


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT")
    return host, int(port)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devcluster.apirelay", description=__doc__)
    parser.add_argument("listen", type=_address, help="HOST:PORT to accept pods' connections on")
    parser.add_argument("target", type=_address, help="HOST:PORT of the API server")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    relay = ApiRelay(args.listen, args.target)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    relay.start()
    log.info("relaying %s:%s to %s:%s", *args.listen, *args.target)
    stop.wait()
    relay.stop()


if __name__ == "__main__":
    main()
