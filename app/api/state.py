"""What the routes share: the configuration, the engine, the signer, and the rules for naming the model."""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import datetime, timezone

from flask import current_app

from ..config import Config
from ..engine.interface import Engine
from ..service.file_store import FileStore
from .convert import Conversion
from .errors import NotFoundError, NotReadyError, ServerError
from .signatures import ThinkingSigner
from .url_fetch import UrlFetcher


@dataclass
class ServerState:
    config: Config
    engine: Engine
    signer: ThinkingSigner
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    files: FileStore | None = None      # the Files API's store, set by `app.api.files.install`

    def __post_init__(self):
        self.effort_budgets = self.config.effort_budget_table()      # a bad table stops the server at start
        for alias in self.config.alias:
            pattern, _, target = alias.partition("=")
            if target and target != self.engine.model_id:
                raise ValueError(f"--alias {alias}: {target!r} is not the served model ({self.engine.model_id!r})")

    def serves(self, name: str) -> bool:
        return name == self.engine.model_id or any(fnmatch.fnmatchcase(name, p) for p in self.config.alias_patterns())

    def check_model(self, name: str) -> None:
        if not self.serves(name):
            raise NotFoundError(f"model: {name} (this server serves {self.engine.model_id}"
                                + (f" and names matching {', '.join(self.config.alias_patterns())}"
                                   if self.config.alias else "") + ")")

    def conversion(self) -> Conversion:
        return Conversion(signer=self.signer, accepts_images=self.engine.accepts_images,
                          model_id=self.engine.model_id, adaptive_thinking_budget=self.config.adaptive_thinking_budget,
                          effort_budgets=self.effort_budgets,
                          url_fetcher=UrlFetcher() if self.config.allow_url_fetch else None)

    def ready_engine(self) -> Engine:
        error = self.engine.load_error()
        if error:
            raise ServerError(f"the model failed to load: {error}")
        if not self.engine.is_ready():
            raise NotReadyError(f"the model {self.engine.model_id} is still loading; retry shortly")
        return self.engine


def state() -> ServerState:
    return current_app.extensions["thinkserve"]
