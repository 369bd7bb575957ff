"""Supervisors' live queue dashboard and reports (docs/reports.md).

`dashboard.py` reads the live figures (conversations, sessions, the last hour's messages), `figures.py`
the reports from the per-conversation facts (`app.runtime.facts`), `charts.py` draws them as SVG,
`views.py` serves the pages and the CSV exports.
"""
