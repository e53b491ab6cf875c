"""The Qt window. Only this package imports Qt; it renders engine events and forwards
the user's intents."""
