"""Insights (footfall.insights.v1): funnels, per-product and per-job tables and
totals over time, computed from the stored events by plain functions that can
run off the event loop."""
