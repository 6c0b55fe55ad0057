"""Alerts: in-app notifications of jobs that ended badly, and each workspace's optional signed webhook
(its configuration, its deliveries with retries, and their log)."""
