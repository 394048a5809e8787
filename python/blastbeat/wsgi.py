"""Run a WSGI application as a BlastBeat node.

::

    python3 -m blastbeat.wsgi --node app1 --connect tcp://127.0.0.1:5000 \\
        [--connect tcp://10.0.0.2:5000 ...] [--threads 8] MODULE:APP

``MODULE:APP`` names the application as gunicorn does: a module importable
from the current directory (or ``--chdir``, or ``PYTHONPATH``) and an
attribute of it (``application`` when omitted; ``APP()`` calls a
factory). See python/README.md.
"""

import argparse
import importlib
import logging
import os
import sys

from .server import Server

__all__ = ["main", "load_app"]


def load_app(spec):
    """Import ``MODULE:ATTR`` (``ATTR`` dotted; ``ATTR()`` calls it)."""
    module, _, attr = spec.partition(":")
    attr = attr or "application"
    call = attr.endswith("()")
    if call:
        attr = attr[:-2]
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if call:
        obj = obj()
    if not callable(obj):
        raise TypeError("%s is not callable" % spec)
    return obj


def _size(text):
    """A byte count: a whole number, 0 or more."""
    n = int(text)
    if n < 0:
        raise ValueError(text)
    return n


_size.__name__ = "byte count"  # argparse's "invalid byte count value: '-1'"


def _parser():
    p = argparse.ArgumentParser(
        prog="python3 -m blastbeat.wsgi",
        description="Serve a WSGI application as a BlastBeat node.",
    )
    p.add_argument("--node", required=True, help="the node name (ZeroMQ identity) the virtual hosts list")
    p.add_argument(
        "--connect",
        action="append",
        required=True,
        metavar="ENDPOINT",
        help="a proxy's zmq endpoint (tcp://host:port or ipc://path); repeat for several proxies",
    )
    p.add_argument("--threads", type=int, default=8, help="worker threads (default 8)")
    p.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds a worker waits for request body or credit before giving up (default 120; 0: for ever)",
    )
    p.add_argument(
        "--no-credits",
        action="store_true",
        help="do not speak credits (only for a proxy that predates them)",
    )
    p.add_argument(
        "--graceful-timeout",
        type=float,
        default=10.0,
        help="on SIGTERM/SIGINT, seconds to let requests in flight finish (default 10)",
    )
    p.add_argument(
        "--max-buffer",
        type=_size,
        default=64 << 20,
        help="bytes of request body a request may hold unread before its session ends (default 64 MiB; 0: no limit)",
    )
    p.add_argument(
        "--max-buffer-total",
        type=_size,
        default=256 << 20,
        help="bytes of request body all requests together may hold unread; past it the session holding the most ends (default 256 MiB; 0: no limit)",
    )
    p.add_argument("--multiprocess", action="store_true", help="set wsgi.multiprocess (other processes serve the app too)")
    p.add_argument("--chdir", help="change to this folder before importing the application")
    p.add_argument("--access-log", action="store_true", help="log one line per request")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("app", metavar="MODULE:APP", help="the WSGI application, e.g. myproject.wsgi:application")
    return p


def main(argv=None):
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.access_log:
        logging.getLogger("blastbeat.access").setLevel(logging.INFO)
    else:
        logging.getLogger("blastbeat.access").setLevel(logging.WARNING)
    if args.chdir:
        os.chdir(args.chdir)
        sys.path.insert(0, os.getcwd())
    app = load_app(args.app)
    server = Server(
        app,
        args.node,
        args.connect,
        threads=args.threads,
        timeout=args.timeout or None,
        credits=not args.no_credits,
        multiprocess=args.multiprocess,
        graceful_timeout=args.graceful_timeout,
        max_buffer=args.max_buffer or None,
        max_buffer_total=args.max_buffer_total or None,
    )
    server.install_signal_handlers()
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
