"""External Identity Type migrations (docs/rules.md, "Migrations"): plans (:mod:`.plans`), the
day-by-day model (:mod:`.model`) and the check of a prediction against later exports."""
