"""The chapter's opening scenario: a user registers and four jobs run in the background."""
