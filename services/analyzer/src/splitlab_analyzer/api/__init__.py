"""HTTP routes of the analyzer (thin: parse, call one service function, return)."""
