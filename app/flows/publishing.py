"""Publishing flows: their drafts become the rules workers run, and the intent model is retrained.

`publish_flows` copies each flow's draft (`Flow.rules`) to `Flow.published_rules` and
(re)trains the intent classifier when the intents' examples changed since the live
model. Workers read only `published_rules` and the newest trained model, so nothing an
admin edits reaches live mail before this runs. The channels' Publish dialog
(`app.publish.services`) calls it together with the addresses' publication.
"""
from __future__ import annotations

from app.extensions import db
from app.flows import editing, engine, intents
from app.models._types import utcnow
from app.models.channels import PublishRecord
from app.runtime.snapshot import record_version


def _rules_summary(old: list | None, new: list) -> str:
    if old is None:
        return f"first publication, {len(new)} rule{'s' if len(new) != 1 else ''}"
    old_by_id = {r.get("id"): r for r in old}
    new_ids = {r.get("id") for r in new}
    added = sum(1 for r in new if r.get("id") not in old_by_id)
    removed = sum(1 for r in old if r.get("id") not in new_ids)
    changed = sum(1 for r in new if r.get("id") in old_by_id and old_by_id[r.get("id")] != r)
    moved = [r.get("id") for r in new if r.get("id") in old_by_id] != [r.get("id") for r in old if r.get("id") in new_ids]
    parts = [f"{n} {word}" for n, word in ((added, "added"), (changed, "changed"), (removed, "removed")) if n]
    if moved:
        parts.append("reordered")
    return ", ".join(parts) if parts else "no rule changes"


def publish_flows(flow_ids: list[int], user_id: int | None, comment: str | None = None,
                  report_unchanged_model: bool = True) -> list[dict]:
    """Make these flows' drafts live and retrain the intent model if its examples changed.

    Returns change summaries (``{"kind", "id", "name", "summary"}``) in the shape of
    `PublishRecord.changes`. With a `comment`, also records a `PublishRecord` (the
    channel Publish dialog passes none and records one record for everything). The
    caller commits. Raises `editing.FlowNotFound`.
    """
    now = utcnow()
    changes = []
    for flow_id in flow_ids:
        flow = editing.get_flow(flow_id)
        rules = engine.order_rules(list(flow.rules or []))
        summary = _rules_summary(flow.published_rules, rules)
        flow.published_rules = [dict(r) for r in rules]
        flow.published_at = now
        if flow.draft_updated_at > now:
            flow.draft_updated_at = now
        changes.append({"kind": "flow", "id": flow.id, "name": flow.name, "summary": summary})
    result = intents.train_and_store(user_id)
    if result.trained or (flow_ids and report_unchanged_model):
        changes.append({"kind": "intents", "id": result.model.id if result.model else None,
                        "name": "Intents", "summary": result.message})
    if comment:
        record = PublishRecord(user_id=user_id, comment=comment.strip(), changes=changes, created_at=now)
        db.session.add(record)
        record_version(record)  # a version like any other Publish: numbered, with its snapshot
    db.session.flush()
    return changes
