"""Reaching a workspace's Dynamics: one Dataverse client per workspace, the column metadata cache, and
the columns the field-mapping step shows."""
