"""SQL for the model registry: the only module of the router that writes queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from splitlab.storage.models import RegisteredModel


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
