"""Activities: engagement events logged as Dynamics activities (service: submit and read; worker: run)."""
