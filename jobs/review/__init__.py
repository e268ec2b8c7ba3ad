"""The local review app (`reusescan review`): flagged pairs in the browser, verdicts into the store.

`jobs.review.data` finds what to review (a scan folder or a nightly store) and
turns its report.csv back into `ReportPair`s keyed by panel content;
`jobs.review.server` serves them on localhost with the report's own cards and
writes each decision into `STORE/verdicts.sqlite` (`jobs.verdicts`).
"""
