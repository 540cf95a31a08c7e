"""The web server: dashboard, REST API and health endpoint, served by `mailroom serve`."""
