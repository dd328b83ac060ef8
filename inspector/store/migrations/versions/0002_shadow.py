"""Shadow mode: a candidate model's counts per run, and the parts on which it disagreed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Two new tables; ``results`` is untouched, so the hot path (one insert per part) stays as it was
and an upgrade of a large ledger does not rewrite it. Frozen like 0001: types spelled out here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON()
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)
VERDICTS = "('OK', 'NG', 'UNSURE', 'ERROR')"


def upgrade() -> None:
    op.create_table(
        "shadow_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("judged", sa.BigInteger(), nullable=False),
        sa.Column("agreed", sa.BigInteger(), nullable=False),
        sa.Column("shed", sa.BigInteger(), nullable=False),
        sa.Column("confusion", JSON, nullable=True),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_shadow_runs_run_id_runs")),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_shadow_runs_model_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shadow_runs")),
    )
    op.create_index(op.f("ix_shadow_runs_model_version_id"), "shadow_runs", ["model_version_id"])
    op.create_index(op.f("ix_shadow_runs_run_id"), "shadow_runs", ["run_id"])
    op.create_table(
        "shadow_results",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("shadow_run_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("frame_index", sa.BigInteger(), nullable=False),
        sa.Column("captured_at", WHEN, nullable=False),
        sa.Column("deployed_verdict", sa.Text(), nullable=False),
        sa.Column("deployed_label", sa.Text(), nullable=True),
        sa.Column("deployed_confidence", sa.Float(), nullable=True),
        sa.Column("verdict", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(f"verdict IN {VERDICTS}", name=op.f("ck_shadow_results_verdict")),
        sa.CheckConstraint(
            f"deployed_verdict IN {VERDICTS}", name=op.f("ck_shadow_results_deployed_verdict")
        ),
        sa.ForeignKeyConstraint(
            ["shadow_run_id"], ["shadow_runs.id"], name=op.f("fk_shadow_results_shadow_run_id_shadow_runs")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_shadow_results_run_id_runs")),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_shadow_results_model_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shadow_results")),
    )
    op.create_index(op.f("ix_shadow_results_run_id_frame_index"), "shadow_results", ["run_id", "frame_index"])
    op.create_index(op.f("ix_shadow_results_model_version_id"), "shadow_results", ["model_version_id"])


def downgrade() -> None:
    op.drop_table("shadow_results")
    op.drop_table("shadow_runs")
