"""The Flask layer: thin routes over mapservice.params (validation) and mapservice.queries (SQL)."""
