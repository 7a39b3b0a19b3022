"""Model definitions, each buildable by registry name from a config."""
