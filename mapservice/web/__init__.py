"""The Flask layer: thin routes that turn requests into values (mapservice.params), call the core and shape
its answers (features, problems); one blueprint per audience."""
