"""editorimages: images uploaded in the rich-text editor, sent inline by Content-ID.

`template_images` names the blobs (by sha256) that admins uploaded for headers and footers.

Revision ID: 0028_editorimages
Revises: 0027_versions
"""
from alembic import op
import sqlalchemy as sa


revision = "0028_editorimages"
down_revision = "0027_versions"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "template_images",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["uploaded_by_id"], ["users.id"], name=op.f("fk_template_images_uploaded_by_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_template_images")),
    )


def downgrade():
    op.drop_table("template_images")
