"""SQL for the model registry: the only module of the router that writes queries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from splitlab.platform.storage.models import ModelArtifact, RegisteredModel


class ModelRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, name: str, version: str) -> RegisteredModel | None:
        query = select(RegisteredModel).where(
            RegisteredModel.name == name, RegisteredModel.version == version
        )
        return self.session.scalars(query).one_or_none()

    def list(self, name: str | None = None) -> Sequence[RegisteredModel]:
        query = select(RegisteredModel).order_by(RegisteredModel.name, RegisteredModel.id)
        if name is not None:
            query = query.where(RegisteredModel.name == name)
        return self.session.scalars(query).all()

    def add(self, row: RegisteredModel) -> None:
        self.session.add(row)
        self.session.flush()

    def add_artifact(self, sha256: str, content: bytes, at: datetime) -> None:
        """Store an uploaded file once per content (the same bytes twice: one row)."""
        self.session.execute(
            insert(ModelArtifact)
            .values(sha256=sha256, content=content, size_bytes=len(content), created_at=at)
            .on_conflict_do_nothing(index_elements=["sha256"])
        )

    def artifacts(self, sha256s: Iterable[str]) -> dict[str, bytes]:
        """The uploaded files among ``sha256s``, by sha256."""
        wanted = sorted(set(sha256s))
        if not wanted:
            return {}
        query = select(ModelArtifact.sha256, ModelArtifact.content).where(
            ModelArtifact.sha256.in_(wanted)
        )
        return {sha: bytes(content) for sha, content in self.session.execute(query)}
