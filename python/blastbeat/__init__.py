"""A WSGI server for BlastBeat nodes.

BlastBeat (the proxy) forwards HTTP requests to backend nodes over
ZeroMQ; this package runs any PEP 3333 application as such a node::

    python3 -m blastbeat.wsgi --node app1 --connect tcp://127.0.0.1:5000 myapp:app

or from Python::

    from blastbeat import serve
    serve(app, "app1", ["tcp://127.0.0.1:5000"], threads=8)

Modules: :mod:`blastbeat.uwsgi` (the uwsgi packet), :mod:`blastbeat.input`
(``wsgi.input``), :mod:`blastbeat.server` (the IO thread and the worker
pool), :mod:`blastbeat.wsgi` (the command line). See python/README.md.
"""

__version__ = "1.0.0"

__all__ = ["serve", "Server", "ClientDisconnected", "__version__"]

from .input import ClientDisconnected  # noqa: E402


def __getattr__(name):
    # Server needs pyzmq; the codec and the input stream do not.
    if name == "Server":
        from .server import Server

        return Server
    raise AttributeError(name)


def serve(app, node, endpoints, **options):
    """Serve ``app`` as node ``node`` of the proxies at ``endpoints``
    (see :class:`blastbeat.server.Server` for the options). Blocks until
    the server stops: on SIGTERM or SIGINT when called from the main
    thread (a graceful stop), or when ``Server.stop()`` is called."""
    import threading

    from .server import Server

    server = Server(app, node, endpoints, **options)
    if threading.current_thread() is threading.main_thread():
        server.install_signal_handlers()
    server.serve_forever()
    return server
