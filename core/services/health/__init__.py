"""Health probes of the app's dependencies (``service``): storage, Key Vault and a workspace's Dynamics."""
