"""Identities and secrets: the platform's caller tokens, Microsoft sign-in (MSAL), Key Vault and the
encryption of token caches."""
