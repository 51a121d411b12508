"""Measurements of rmc itself (throughput), kept out of the method package."""
