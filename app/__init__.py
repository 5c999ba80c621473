"""thinkserve: any Hugging Face transformers model behind the Anthropic Messages API (and OpenAI's chat completions)."""
from __future__ import annotations

from pathlib import Path

from flask import Flask

from .config import Config

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
STATIC = ROOT / "static"    # the playground's CSS and JavaScript, served as they are (no build step)


def create_app(config: Config | None = None, engine=None) -> Flask:
    """The application factory. Without an engine, the real one is built and starts loading in the background,
    so /health answers (503) while the model loads."""
    from .api import batches, files, http, messages, models, openai, playground, render
    from .api.signatures import ThinkingSigner, load_or_create_key
    from .api.state import ServerState

    config = config or Config()
    if engine is None:
        from .engine.runtime import LocalEngine   # imports torch: only when a real engine is wanted
        engine = LocalEngine(config)
        engine.start_loading()
    app = Flask(__name__, template_folder=str(TEMPLATES), static_folder=str(STATIC))
    app.json.sort_keys = False
    signer = ThinkingSigner(load_or_create_key(config.signing_key, config.data_dir), engine.model_id)
    server = app.extensions["thinkserve"] = ServerState(config=config, engine=engine, signer=signer)
    http.install(app, api_key=config.api_key, max_request_bytes=config.max_request_bytes,
                 limits_by_path={"/v1/messages/batches": config.max_batch_request_bytes,
                                 "/v1/files": files.upload_body_limit(config)},
                 envelopes_by_prefix={prefix: openai.openai_error for prefix in openai.PREFIXES})
    app.register_blueprint(messages.bp)
    app.register_blueprint(models.bp)
    app.register_blueprint(render.bp)
    app.register_blueprint(playground.bp)
    openai.install(app)             # POST /v1/chat/completions and /v1/responses, in OpenAI's shapes and envelope
    files.install(app, server)      # before batches: a resumed batch may name files
    batches.install(app, server)    # the store and the runner; resumes batches a previous process left running
    return app
