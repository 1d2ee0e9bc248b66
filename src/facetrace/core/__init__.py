"""What every layer may use: the settings, the error types, atomic and private file writes."""
