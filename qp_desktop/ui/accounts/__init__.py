"""The Accounts page: accounts, their IT Glue match, agents; Match, Retry, Automatch."""
