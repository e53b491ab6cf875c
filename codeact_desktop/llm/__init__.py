"""Model backends behind one small interface (``base.ChatBackend``)."""
