"""The CRM cards of the Integrations page and the one-active-CRM rule."""
