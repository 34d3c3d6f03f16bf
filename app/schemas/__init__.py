"""Pydantic schemas shared by API bodies, forms and the CLI."""
