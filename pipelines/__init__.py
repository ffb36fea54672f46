"""The application layer: the jobs users run and the `medgan` CLI."""
