"""Weight files: read formats safely into flat name→array dicts, recognise the network, save atomically."""
