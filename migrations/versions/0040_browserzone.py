"""browserzone: "Browser's time zone" until a user chooses one.

`users.time_zone` becomes the zone the user chose, NULL while they have chosen none; the new
`users.browser_time_zone` is the zone their browser reported (used while `time_zone` is NULL).

Existing users: the profile's time zone and the audit log came together (0017_accounts), and every
change of it in the Profile is audited (`profile_edit`, its `fields` naming "time_zone"). A user
still on the old default 'UTC' with no such entry never changed it: they become "not chosen" and
follow their browser from their next page. One with such an entry chose UTC (away and back) and
keeps it; every other zone was chosen and stays. Down: "not chosen" is UTC again.

Revision ID: 0040_browserzone
Revises: 0039_search2
"""
from alembic import op
import sqlalchemy as sa


revision = "0040_browserzone"
down_revision = "0039_search2"
branch_labels = None
depends_on = None

users = sa.table("users", sa.column("id", sa.Integer), sa.column("time_zone", sa.String))
audit = sa.table("audit_entries", sa.column("target_user_id", sa.Integer), sa.column("action", sa.String),
                 sa.column("details", sa.JSON))


def _chose_a_zone(details) -> bool:
    return isinstance(details, dict) and "time_zone" in (details.get("fields") or [])


def upgrade():
    with op.batch_alter_table("users") as batch:
        batch.alter_column("time_zone", existing_type=sa.String(64), nullable=True, server_default=None)
        batch.add_column(sa.Column("browser_time_zone", sa.String(64), nullable=True))
    bind = op.get_bind()
    on_default = set(bind.scalars(sa.select(users.c.id).where(users.c.time_zone == "UTC")))
    if not on_default:
        return
    chose = {user_id for user_id, details in bind.execute(
        sa.select(audit.c.target_user_id, audit.c.details).where(audit.c.action == "profile_edit"))
        if user_id in on_default and _chose_a_zone(details)}
    never_chose = sorted(on_default - chose)
    for start in range(0, len(never_chose), 500):
        bind.execute(users.update().where(users.c.id.in_(never_chose[start:start + 500])).values(time_zone=None))


def downgrade():
    op.execute(users.update().where(users.c.time_zone.is_(None)).values(time_zone="UTC"))
    with op.batch_alter_table("users") as batch:
        batch.drop_column("browser_time_zone")
        batch.alter_column("time_zone", existing_type=sa.String(64), nullable=False, server_default="UTC")
