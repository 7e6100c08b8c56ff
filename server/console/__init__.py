"""Footfall's own read contract (footfall.console.v1): events and refusals read
back, watched and reset."""
