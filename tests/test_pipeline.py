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


def test_a_materialised_step_runs_as_its_own_statement_and_its_table_is_dropped(lab, monkeypatch):
    p = Pipeline()
    p.add("nums", "SELECT * FROM range(10) t(n)")
    p.add("evens", "SELECT n FROM nums WHERE n % 2 = 0", materialise=True)
    p.add("odds", "SELECT n FROM nums WHERE n % 2 = 1")  # reads a step before the materialised one
    p.add("pairs", "SELECT e.n AS e, o.n AS o FROM evens e JOIN odds o ON o.n = e.n + 1 WHERE e.n > 4")
    statements: list[str] = []
    run = type(lab.engine).execute

    def execute(engine, sql, params=None):
        statements.append(" ".join(sql.split()))
        return run(engine, sql, params)

    monkeypatch.setattr(type(lab.engine), "execute", execute)
    assert p.run(lab.engine, "out") == {}
    assert sorted(lab.engine.query_rows("SELECT e, o FROM out")) == [(6, 7), (8, 9)]
    made = [s for s in statements if s.startswith("CREATE OR REPLACE TABLE")]
    assert [s.split(" AS ")[0].split()[-1] for s in made] == ["out__evens", "out"]
    # the first statement computes only what evens needs; the output reads evens from its table
    # and computes nums again for odds
    assert "odds" not in made[0] and "out__evens" in made[1] and " evens AS (" not in made[1]
    assert not lab.engine.query_rows("SELECT 1 FROM information_schema.tables WHERE table_name = 'out__evens'")
    # the same rows as one statement
    one = Pipeline([type(s)(s.name, s.sql) for s in p.steps])
    one.run(lab.engine, "out_one")
    assert sorted(lab.engine.query_rows("SELECT e, o FROM out_one")) == [(6, 7), (8, 9)]
