"""Self-contained HTML for reports people open: no server, no external assets."""
