"""The send queue's job: deliver one outgoing message (and others due for the same server)."""
from app.runtime.outbound import deliver_message
from jobs import app_context


def send_message(message_id: int) -> dict:
    """Claim, send and record; see `app.runtime.outbound` for the state machine and the exactly-once rules."""
    with app_context():
        return deliver_message(message_id)
