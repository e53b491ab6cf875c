"""SQLite history: conversations, messages, actions, outputs, files."""
