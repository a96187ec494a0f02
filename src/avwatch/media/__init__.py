"""Getting media in: opening sources, decoding once, making analysis samples."""
