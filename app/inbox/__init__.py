"""The agent workspace: conversations, messages, composer, drafts."""
