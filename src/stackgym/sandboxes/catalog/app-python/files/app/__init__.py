"""The data model and loaders of the app."""
