"""Publish: drafts of addresses and flows made live together, and the publish history."""
