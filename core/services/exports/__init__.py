"""Exports: contacts and companies into Dynamics (service: submit and read jobs; worker: run chunks)."""
