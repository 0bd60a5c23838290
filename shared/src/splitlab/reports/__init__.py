"""Reports: tables for the terminal and self-contained HTML pages for SplitLab results."""
