"""HTTP routes: thin translations from requests to service calls."""
