"""Accounts of the teams' workspace: who someone is (roles, scopes), how they get in (invitations, passwords,
sessions, API tokens, throttled logins) and what they may do (`permissions.authorize`, used by every read and
write of the workspace and of its API)."""
