"""The results ledger: stations, model versions, runs, results, reviews, events.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Frozen: types are spelled out here rather than imported from schema.py, so a later change of the
ORM cannot silently rewrite what this revision creates.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON()  # not JSONB: probabilities keep their class order
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("profile", JSON, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stations")),
        sa.UniqueConstraint("name", name=op.f("uq_stations_name")),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("config", JSON, nullable=True),
        sa.Column("metrics", JSON, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("sha256", name="uq_model_versions_sha256"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("operator", sa.Text(), nullable=False),
        sa.Column("lot", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("started_at", WHEN, nullable=False),
        sa.Column("stopped_at", WHEN, nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("stats", JSON, nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'finished', 'interrupted', 'failed')", name=op.f("ck_runs_status")
        ),
        sa.ForeignKeyConstraint(["station_id"], ["stations.id"], name=op.f("fk_runs_station_id_stations")),
        sa.ForeignKeyConstraint(
            ["model_version_id"], ["model_versions.id"], name=op.f("fk_runs_model_version_id_model_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index(op.f("ix_runs_status"), "runs", ["status"])
    op.create_index(op.f("ix_runs_started_at"), "runs", ["started_at"])
    op.create_index(op.f("ix_runs_lot"), "runs", ["lot"])
    op.create_table(
        "results",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("frame_index", sa.BigInteger(), nullable=False),
        sa.Column("captured_at", WHEN, nullable=False),
        sa.Column("verdict", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("probabilities", JSON, nullable=True),
        sa.Column("ood_score", sa.Float(), nullable=True),
        sa.Column("latency_queue_ms", sa.Float(), nullable=True),
        sa.Column("latency_infer_ms", sa.Float(), nullable=True),
        sa.Column("latency_total_ms", sa.Float(), nullable=True),
        sa.Column("image_ref", sa.Text(), nullable=True),
        sa.Column("truth", sa.Text(), nullable=True),
        sa.Column("reviewed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("reviewed_label", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("verdict IN ('OK', 'NG', 'UNSURE', 'ERROR')", name=op.f("ck_results_verdict")),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_results_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_results")),
    )
    op.create_index(
        op.f("ix_results_verdict_reviewed_captured_at"), "results", ["verdict", "reviewed", "captured_at"]
    )
    op.create_index(op.f("ix_results_captured_at"), "results", ["captured_at"])
    op.create_index(op.f("ix_results_run_id_frame_index"), "results", ["run_id", "frame_index"])
    op.create_table(
        "reviews",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("result_id", BIG_ID, nullable=False),
        sa.Column("reviewer", sa.Text(), nullable=False),
        sa.Column("reviewed_at", WHEN, nullable=False),
        sa.Column("old_label", sa.Text(), nullable=True),
        sa.Column("new_label", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["result_id"], ["results.id"], name=op.f("fk_reviews_result_id_results")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
    )
    op.create_index(op.f("ix_reviews_result_id"), "reviews", ["result_id"])
    op.create_table(
        "events",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("station_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("level IN ('info', 'warning', 'alarm')", name=op.f("ck_events_level")),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_events_run_id_runs")),
        sa.ForeignKeyConstraint(["station_id"], ["stations.id"], name=op.f("fk_events_station_id_stations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_at"), "events", ["at"])
    op.create_index(op.f("ix_events_run_id"), "events", ["run_id"])


def downgrade() -> None:
    for table in ("events", "reviews", "results", "runs", "model_versions", "stations"):
        op.drop_table(table)
