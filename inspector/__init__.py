"""inspector layer."""
