"""Mail machinery with no Flask views: MIME parsing, threading, ingest, IMAP/POP3/SMTP
adapters, rendering and vCards. Modules here take plain values and are unit-testable
without a request; the inbound and outbound issues fill it in."""
