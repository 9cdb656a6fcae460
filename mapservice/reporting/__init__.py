"""The bimonthly report per académie, département and PSAD platform (issue 11): catalogue indicators, coverage
of the population, zones blanches, activity figures entered by the platforms against the académies' yearly
objectives, frozen snapshots of closed periods and their evolution. No Flask here: web/reporting.py serves it."""
