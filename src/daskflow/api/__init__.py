"""The user API: tasks, flows and their futures."""
