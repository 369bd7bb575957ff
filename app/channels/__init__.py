"""Email channel setup: domains, addresses, template design, Test Connection, Publish."""
