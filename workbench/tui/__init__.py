"""The Textual app (``workbench`` with no command). Nothing else imports this package."""
