"""What every SplitLab HTTP service shares: the app factory, middleware, errors, health, metrics."""
