"""The analytics service (services/analytics/README.md)."""
