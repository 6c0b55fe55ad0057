"""The workspace's Dynamics connection: connect / callback / disconnect, its access tokens and the timer
that refreshes them and resumes work paused for them."""
