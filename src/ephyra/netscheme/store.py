"""Environments, kept in the journal's database beside the runs: one row each, the
document as JSON and a revision that every change compares and bumps, so two callers
changing one environment never lose either's change silently."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from ephyra.errors import EnvironmentNotFound, IllegalTransition, UsageError
from ephyra.netscheme.model import Environment

METADATA = sa.MetaData()
ENVIRONMENTS = sa.Table(
    "ephyra_environments",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("doc", sa.Text, nullable=False),
)
TRIES = 5


class Environments:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        METADATA.create_all(engine, checkfirst=True)

    def list(self) -> list[Environment]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(ENVIRONMENTS.c.doc).order_by(ENVIRONMENTS.c.id)).all()
        return [Environment.model_validate_json(row.doc) for row in rows]

    def get(self, ref: str) -> Environment:
        """An environment by id or name."""
        return self._get(ref)[0]

    def _get(self, ref: str) -> tuple[Environment, int]:
        where = ENVIRONMENTS.c.name == ref
        if ref.isdigit():
            where = sa.or_(where, ENVIRONMENTS.c.id == int(ref))
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(ENVIRONMENTS.c.doc, ENVIRONMENTS.c.revision).where(where)
            ).first()
        if row is None:
            raise EnvironmentNotFound(f"no environment {ref}: import it with `ephyra env import`")
        return Environment.model_validate_json(row.doc), row.revision

    def put(self, env: Environment, replace: bool = False) -> bool:
        """Store an environment; an existing one (same id) only with ``replace``.
        Whether it was new."""
        doc = env.model_dump_json()
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(ENVIRONMENTS.c.name, ENVIRONMENTS.c.revision).where(
                    sa.or_(ENVIRONMENTS.c.id == env.id, ENVIRONMENTS.c.name == env.name)
                )
            ).all()
            if not row:
                conn.execute(
                    ENVIRONMENTS.insert().values(id=env.id, name=env.name, revision=1, doc=doc)
                )
                return True
            if not replace or len(row) > 1:
                raise UsageError(
                    f"environment {env.id} ({env.name}) clashes with {row[0].name}: "
                    "--replace to overwrite it"
                    if len(row) == 1
                    else f"id {env.id} and name {env.name} belong to two environments"
                )
            conn.execute(
                ENVIRONMENTS.update()
                .where(ENVIRONMENTS.c.id == env.id)
                .values(name=env.name, revision=row[0].revision + 1, doc=doc)
            )
            return False

    def change(self, ref: str, how: Callable[[Environment], Environment]) -> Environment:
        """Apply ``how`` to the stored environment and save the result, if nobody changed
        it in between (else read it again and retry)."""
        for _ in range(TRIES):
            env, revision = self._get(ref)
            changed = Environment.parse(how(env).model_dump(mode="json"))
            with self.engine.begin() as conn:
                done = conn.execute(
                    ENVIRONMENTS.update()
                    .where(ENVIRONMENTS.c.id == env.id, ENVIRONMENTS.c.revision == revision)
                    .values(revision=revision + 1, doc=changed.model_dump_json())
                ).rowcount
            if done:
                return changed
        raise IllegalTransition(f"environment {ref} kept changing under this change: try again")
