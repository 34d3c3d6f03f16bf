"""HTML routers: parse the form, call the same service as the API, render."""
