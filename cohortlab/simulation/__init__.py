"""The simulation of the Mixpanel Cohorts feed (docs/rules.md): who is a member when
(:mod:`.membership`), which profile each member reaches (:mod:`.resolution`), what the feed
writes run after run (:mod:`.sync`) and where the users went (:mod:`.waterfall`), through one
entry, :func:`cohortlab.simulation.simulate.simulate`."""
