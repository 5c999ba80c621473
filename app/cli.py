"""`thinkserve serve …` / `python -m app serve …`."""
from __future__ import annotations

import argparse
import ipaddress
import logging
import sys

from . import config as config_module

log = logging.getLogger("thinkserve")
SECRETS = ("api_key", "signing_key")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="thinkserve", description="Serve a transformers model through the "
                                                                    "Anthropic Messages API.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="load the model and serve the API",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    config_module.add_arguments(serve)
    return parser


def log_effective_config(config: config_module.Config, sources: dict) -> None:
    log.info("effective configuration:")
    for name, source in sources.items():
        value = getattr(config, name)
        shown = "(set)" if name in SECRETS and value else value
        log.info("  %-20s = %-40r [%s]", name, shown, source)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False     # a host name: it may well be reachable from elsewhere


def warn_if_open(config: config_module.Config) -> None:
    """Anyone who can reach a non-loopback address can use the model (and read batch results) without a key."""
    if not config.api_key and not is_loopback(config.host):
        log.warning("listening on %s without --api-key: anyone who can reach this address can use the API; "
                    "set --api-key (or THINKSERVE_API_KEY) or bind to 127.0.0.1", config.host)


def serve(config: config_module.Config) -> None:
    from . import create_app
    from .engine.errors import ModelLoadError
    from .engine.model.loader import preflight

    try:
        preflight(config)   # settings that can never load (a missing file, a bad --max-memory) fail now, clearly
    except ModelLoadError as exc:
        log.error("%s", exc)
        sys.exit(2)
    app = create_app(config)
    warn_if_open(config)
    if config.debug:
        log.warning("Flask development server (--debug): not for production use")
        app.run(host=config.host, port=config.port, threaded=True, use_reloader=False)
        return
    from .wsgi_server import create_server
    log.info("listening on http://%s:%d (waitress, %d threads)", config.host, config.port, config.threads)
    # waitress sends each chunk the app yields as soon as it is written (send_bytes defaults to 1), so every
    # SSE event is flushed; channel_request_lookahead makes waitress.client_disconnected work, which is how
    # an abandoned generation gets cancelled.
    server = create_server(app, limit_for=app.extensions["body_limit_for"], host=config.host, port=config.port,
                           threads=config.threads, channel_request_lookahead=1, ident="thinkserve")
    server.run()


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        config, sources = config_module.resolve(args)
    except ValueError as exc:
        sys.exit(f"thinkserve: {exc}")
    logging.basicConfig(level=logging.DEBUG if config.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log_effective_config(config, sources)
    if args.command == "serve":
        serve(config)
