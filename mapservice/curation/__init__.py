"""Curation of the catalogue by the local teams: sites and solutions (positions checked), statuses and the review
of partners' proposals, "toujours exact", vacant places in one screen, history and revert, the error-report inbox,
territories, the dashboard. Every function checks the actor with `accounts.permissions.authorize` first."""
