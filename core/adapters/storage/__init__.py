"""Azure Storage: table, blob and queue clients from the settings, and the repositories kept in tables."""
