"""The kit: settings, contracts, the module factory, checks and the feedback policy."""
