"""The dashboard page: server-rendered (the kit's pages), charts drawn by plotly.js served
by the service itself (routes.py, static/), every chart also a table."""
