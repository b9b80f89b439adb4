"""Robustness: fuzzed readers, faults (killed jobs, corrupt files), security and load."""
