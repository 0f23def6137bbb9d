"""torchdiffeq's ported tests: the cases that fail for a reason outside difflens (``peer_port`` is registered in pyproject.toml)."""


# Cases that fail for a reason outside difflens, marked here so the ported files stay as torchdiffeq wrote them.
XFAIL = {
    "test_odeint.py::TestMinMaxStep::test_min_max_step":
        "fails on torchdiffeq 0.2.5 itself with SciPy 1.17: scipy's LSODA ignores min_step (191 evaluations, "
        "the test wants < 50); the dopri5 half is tested in tests/test_dynamics_odeint.py",
}


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        for key, reason in XFAIL.items():
            if item.nodeid.endswith(key):
                item.add_marker(pytest.mark.xfail(reason=reason, strict=False))
