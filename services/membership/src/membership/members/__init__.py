"""The FS feed → members: pure rules, the graduated handler, member SQL, publishing, staff search and API."""
