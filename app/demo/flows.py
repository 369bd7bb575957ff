"""The demo's flows: example phrases of its intents (billing, delivery, returns, account access),
a queue per intent, and a published flow that routes by them.

`flask demo seed` creates these (`seed_demo`); bench/flows.py trains on part of the
phrases and measures accuracy on the rest. Written for Pigeonhole, in the words
customers use.
"""
from __future__ import annotations

from sqlalchemy import select

from app.auth.services import ensure_queue
from app.extensions import db
from app.flows import editing, intent_examples, publishing
from app.models.flows import Flow, Intent

DEMO_INTENTS: dict[str, tuple[str, list[str]]] = {
    "billing": ("Invoices, charges, payments and refunds of money", [
        "I was charged twice for the same order",
        "Please refund the double payment on my credit card",
        "My invoice shows the wrong amount",
        "Can you send me a copy of my invoice for March?",
        "Why did my subscription fee go up this month?",
        "I need a VAT invoice with my company name on it",
        "The payment failed but the money left my account",
        "There is a charge on my bank statement I do not recognise",
        "How do I update the credit card you bill?",
        "I cancelled but you still billed me",
        "When will I get my refund? It has been two weeks",
        "Please issue a credit note for the overcharge",
        "Your direct debit took money twice",
        "Can I pay by bank transfer instead of card?",
        "The discount code was not applied to my bill",
        "I would like a receipt for my last payment",
        "Where is the money you promised to refund?",
        "My card was declined although it has funds",
        "Please stop charging my PayPal account",
        "The total on the invoice does not match the order confirmation",
        "I was billed for a plan I never signed up for",
        "Can I get an itemised bill?",
        "The annual renewal charged me without notice, I want my money back",
        "How much do I still owe on my account?",
        "Please change the billing address on my invoices",
        "Wrong currency on my invoice, I should pay in euros",
        "Reimbursement for the overcharged shipping fee please",
        "Your payment page shows an error when I enter my card",
        "I paid the invoice already, why do I get a payment reminder?",
        "Duplicate transaction on my statement from your shop",
        "Tax is calculated wrongly on my invoice",
        "Please confirm you received my payment",
        "Ich wurde zweimal belastet, bitte erstatten Sie den Betrag",
        "J'ai été débité deux fois pour ma commande",
    ]),
    "delivery": ("Shipping, tracking and late or missing parcels", [
        "Where is my parcel? It has not arrived yet",
        "My order was supposed to arrive on Monday and nothing came",
        "The tracking number does not work",
        "The courier says delivered but I have no package",
        "How long does shipping to Canada take?",
        "Can you deliver to my office instead of my home address?",
        "My package has been stuck in customs for a week",
        "The tracking page has not updated for five days",
        "When will my order ship?",
        "The delivery driver left my parcel at the wrong house",
        "Can I change the delivery date?",
        "Do you ship to PO boxes?",
        "My order shows dispatched but the carrier has no record",
        "Is express shipping available for my order?",
        "I was not home, how do I rearrange delivery?",
        "The box arrived but half of the items are missing",
        "Package lost in transit, what now?",
        "Please send me the tracking link for order 4411",
        "Delivery is late again, I needed it for a birthday",
        "Which courier do you use for shipments to Spain?",
        "The parcel was returned to sender because of a wrong address",
        "Can I pick up my order at a pickup point?",
        "Shipment delayed, can you check with the carrier?",
        "I got a notice that the delivery failed",
        "How can I track my order without an account?",
        "My order still says processing after ten days",
        "Estimated delivery date keeps moving",
        "The postman says there is duty to pay on my parcel",
        "Please update the shipping address before it leaves the warehouse",
        "Nothing has been delivered yet and it is two weeks late",
        "Is my package on its way?",
        "The delivery van never showed up today",
        "Wo ist mein Paket? Die Sendungsverfolgung zeigt nichts",
        "Mon colis n'est toujours pas livré",
    ]),
    "returns": ("Returning goods, exchanges, damaged or wrong items", [
        "I want to return the shoes, they are too small",
        "How do I send back an item I do not like?",
        "Can I exchange the shirt for a larger size?",
        "The product arrived broken, I want to send it back",
        "Please send me a return label",
        "What is your return policy?",
        "I received the wrong colour, can I swap it?",
        "The jacket has a tear, I would like a replacement",
        "Is return shipping free?",
        "I returned the parcel last week, did you receive it?",
        "The item is faulty and stopped working after two days",
        "Can I return an item bought on sale?",
        "How many days do I have to return my order?",
        "I want to exchange the blender for another model",
        "The screen was cracked when I opened the box",
        "Wrong item delivered, I ordered a blue lamp and got a red one",
        "Please arrange a pickup for my return",
        "I lost the return form, can you email it again?",
        "Do I need the original packaging to return it?",
        "The size chart was wrong, sending the trousers back",
        "Can I return part of my order and keep the rest?",
        "My replacement also arrived damaged",
        "Where do I drop off my return?",
        "The warranty repair is taking too long, I want a new one",
        "I would like to start a return for order 5821",
        "The product does not match the description, returning it",
        "Exchange request: the ring does not fit",
        "Defective charger, please replace it",
        "I changed my mind about the sofa, can I send it back?",
        "The headphones have a manufacturing defect",
        "Return label does not print, please help",
        "Is there a restocking fee on returns?",
        "Ich möchte die Ware zurücksenden, sie ist beschädigt",
        "Je voudrais retourner cet article, il est abîmé",
    ]),
    "account access": ("Signing in, passwords, locked or hacked accounts, account details", [
        "I cannot log in to my account",
        "The password reset email never arrives",
        "My account is locked after too many attempts",
        "I forgot my password",
        "How do I change the email address of my account?",
        "Someone hacked my account and changed the password",
        "The two-factor code is not accepted",
        "I lost my phone and cannot get the verification code",
        "Please delete my account and my data",
        "The login page says my email is unknown",
        "How do I change my username?",
        "I keep getting logged out of the app",
        "The reset link says it has expired",
        "I signed up twice, can you merge my accounts?",
        "I never received the account activation email",
        "My account was suspended, why?",
        "Can you unlock my profile please?",
        "I cannot sign in with Google anymore",
        "How do I turn off two-step verification?",
        "Somebody else is using my login",
        "Error message invalid credentials although the password is right",
        "I want to update the phone number on my profile",
        "The app says session expired every time I open it",
        "Please close my account",
        "I do not remember which email I registered with",
        "My new password is not accepted",
        "I got an email about a login from another country",
        "Account verification keeps failing",
        "Can I have two users on one account?",
        "Sign in button does nothing on the website",
        "The captcha will not let me log in",
        "I want to download all my personal data",
        "Ich kann mich nicht mehr anmelden, Passwort vergessen",
        "Je n'arrive pas à me connecter à mon compte",
    ]),
}


DEMO_FLOW = "Route by intent"
DEMO_QUEUES = {"billing": "Billing", "delivery": "Delivery", "returns": "Returns", "account access": "Account Access"}


def seed_demo(users: dict) -> list[str]:
    """Demo intents, one queue per intent and a published flow that routes by them (idempotent).

    `users` maps the demo users' emails to their rows. Returns one line per thing created.
    """
    created = []
    members = [u for email, u in users.items() if email in ("agent@demo.test", "supervisor@demo.test")]
    for name, (description, examples) in DEMO_INTENTS.items():
        if db.session.scalar(select(Intent.id).where(Intent.name == name)) is None:
            intent_examples.save_intent(None, name, description, "\n".join(examples))
            created.append(f"intent {name} ({len(examples)} examples)")
    queues = {intent: ensure_queue(name, members=members) for intent, name in DEMO_QUEUES.items()}
    general = ensure_queue("General")
    flow = db.session.scalar(select(Flow).where(Flow.name == DEMO_FLOW))
    if flow is None:
        flow = editing.create_flow(DEMO_FLOW, "Classifies each new conversation and routes it to the queue "
                                               "of its intent; the rest goes to General.")
        for intent, queue in queues.items():
            actions = [{"type": "set_queue", "queue_id": queue.id}, {"type": "assign", "mode": "last_agent"},
                       {"type": "add_tags", "tags": [intent.replace(" ", "-")]}]
            if intent == "account access":
                actions.append({"type": "set_priority", "priority": 1})
            editing.add_rule(flow.id, {"name": queue.name, "match": "all", "actions": actions, "conditions": [
                {"type": "intent", "value": intent, "min_confidence": 0.5}]})
        editing.add_rule(flow.id, {"name": "Everything else", "actions": [
            {"type": "set_queue", "queue_id": general.id}, {"type": "assign", "mode": "least_loaded"}]})
        publishing.publish_flows([flow.id], None)
        created.append(f"flow {DEMO_FLOW} (published; intent model trained)")
    return created
