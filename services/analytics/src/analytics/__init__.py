"""The analytics service: projections of every topic, rebuildable at any time (services/analytics/README.md)."""
