"""The workspace's Dynamics configuration (the four setup steps): saves with ETags, history, and the
check of every save against the live Dynamics metadata."""
