"""Microsoft 365 / Entra ID: the Graph client the tenant resets cloud accounts with, and an
emulator of the login endpoint and the Graph calls it uses (tests and demos)."""
