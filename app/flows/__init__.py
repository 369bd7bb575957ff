"""Experience flows: rules, intents, routing, automation."""
