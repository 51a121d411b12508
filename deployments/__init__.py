"""Deployment definitions: how the flows are served, triggered and scheduled."""
