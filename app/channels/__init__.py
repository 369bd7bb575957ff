"""Email channel setup: domains, addresses, the address wizard, Test Connection, Preview.

Services by what they change or read: `domains`, `addresses`, `wizard`, `connection_test`,
`preview`, with `validation` (choices, normal forms) and `errors` beneath them. Publishing
the drafts lives in `app.publish`, the live read model in `app.runtime.live`.
"""
