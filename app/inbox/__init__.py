"""The agent workspace: conversations, messages, composer, drafts.

The services take ids and values and raise (`access.NotFound`, `access.InvalidAction`, and
sending's own two); they never commit: `views` turns what they return into pages and commits,
and what a service hands to a job runs after that commit (`app.transactions.on_commit`).
The modules, by what they read or change:

* `access`: who may see which conversation, message, attachment; the two common errors
* `lists`: the inbox lists (keyset pages, search, polling), the tabs' counts, what a user has seen
* `choices`: the queues and agents a user can pick (queue filter, Transfer, Assign)
* `conversation`: the conversation page's read model
* `actions`: assign, transfer, set a status, add a note
* `organize`: priority, tags, snooze; `merging`: merge two conversations, split a message off;
  `trail`: the audit trail's lines and CSV exports (written by `app.runtime.trail`)
* `addresses`: our addresses and the From addresses a user may send from
* `drafts`: the composer's drafts and their attachments
* `sending`: a draft to an outgoing message; delivery after commit, Retry
* `suggestions`: known contacts while the agent types a recipient
* `search` (full-text), `recipients` (address rules), `display` (a message's frame),
  `presence` (who else is there), `forms`; the pages: `pages` (blueprint and what they share),
  `views` (inbox, conversation, actions, messages), `composer_views` (drafts, Send, pickers) and
  `organize_views` (the Organize card, Split, the trail's exports)
"""
