"""The mail runtime: the live configuration, ingest, polling, the ingress and outbound mail."""
