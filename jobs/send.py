"""The send queue's job: deliver one outgoing message (and others due for the same server)."""
from app.runtime.outbound import deliver_message, deliver_send_test
from app.runtime.outbound.sent_folder import save_sent_copy
from jobs import app_context


def send_message(message_id: int) -> dict:
    """Claim, send and record; see `app.runtime.outbound` for the state machine and the exactly-once rules."""
    with app_context():
        return deliver_message(message_id)


def save_sent_copy_job(message_id: int) -> str | None:
    """Put a sent message in its address's Sent folder (opt-in); see `app.runtime.outbound.sent_folder`."""
    with app_context():
        return save_sent_copy(message_id)


def send_test_email(test_id: int) -> str:
    """Send one test email ("Send test email"); see `app.runtime.outbound.send_test`."""
    with app_context():
        return deliver_send_test(test_id)
