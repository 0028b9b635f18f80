"""`fieldsync simulate`: a short seeded field day with a patchy network, checked against the server."""

from __future__ import annotations

import pytest

from fieldsync_client.simulator import Day, Simulation
from service.cli import main
from tests.e2e.conftest import ADMIN


def test_seeded_days_with_faults_pass_the_check_and_the_check_sees_a_phone_that_differs(
    serve, capsys: pytest.CaptureFixture[str]
) -> None:
    server = serve("--memory")
    main(
        ["simulate", "--url", server.url, "--token", ADMIN, "--reps", "1", "--outlets", "1", "--steps", "2", "--check"]
    )
    out = capsys.readouterr().out
    assert "simulated day (seed 1" in out and "  pushes: " in out and "check: every decided change" in out, out

    simulation = Simulation(server.url, ADMIN, Day(reps=3, outlets=3, steps=5, seed=11))
    try:
        simulation.setup()
        simulation.run_day()
        report = simulation.report()
        assert simulation.check() == [], report
        assert simulation.summary["pushes"] and simulation.summary["status APPLIED"], report
        assert "network: lost answers" in report and "status DUPLICATE" in report, report
        assert simulation.summary["photos sent"] == len(simulation.photos) > 0, report

        phone = simulation.reps[0].phone
        key = next(k for k in phone.state["server"] if k.startswith("VISIT/"))
        phone.state["server"][key]["fields"] = {**phone.state["server"][key]["fields"], "status": "CANCELLED"}
        phone.state["decided"]["forged:1"] = "APPLIED"
        phone.state["photos"]["never-sent"] = {"sha256": "0" * 64, "location": None}
        failures = simulation.check()
        assert any("data differs" in f for f in failures) and any("history" in f for f in failures), failures
        assert any("still holds 1 photos" in f for f in failures), failures
    finally:
        simulation.close()
