"""The command-line interface; it calls the services only."""
