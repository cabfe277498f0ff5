"""Config checks that run before Hydra makes a folder: schema, value rules, the machine."""
