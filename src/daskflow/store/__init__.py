"""The run store: every flow run, task run, transition and log, durable."""
