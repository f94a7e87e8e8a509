"""Named SQL steps: one statement normally, one table per step in debug mode."""

from cohortlab.pipeline import Pipeline


def _pipeline():
    p = Pipeline()
    p.add("nums", "SELECT * FROM range(10) t(n)")
    p.add("evens", "SELECT n FROM nums WHERE n % 2 = 0")
    p.add("big_evens", "SELECT n FROM evens WHERE n > 4")
    return p


def test_pipeline_runs_as_one_statement(lab):
    assert _pipeline().run(lab.engine, "out") == {}
    assert sorted(r[0] for r in lab.engine.query_rows("SELECT n FROM out")) == [6, 8]


def test_debug_mode_reports_rows_per_step(lab):
    counts = _pipeline().run(lab.engine, "out", debug=True)
    assert counts == {"nums": 10, "evens": 5, "big_evens": 2}
    assert lab.engine.count("out__evens") == 5
