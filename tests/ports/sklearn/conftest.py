"""scikit-learn test ports: the out-of-scope cases, each with its reason (``peer_port`` is registered in pyproject.toml)."""

import pytest

# test name (without parameters) -> why its subject is out of scope for difflens.gp
OUT_OF_SCOPE = {
    "test_gpr_interpolation_structured": "structured (string) inputs through MiniSeqKernel: difflens.gp "
                                         "takes numeric (N, D) inputs only",
}


# exact node ids -> why difflens fails the case although its answer is right (kept as strict xfails)
KNOWN_REFERENCE_ERRORS = {
    f"test_kernel_gradient[kernel{i}]": "the reference is _approx_fprime's forward difference (step 1e-10), "
    "off by 4.4e-4 where K ~ 874 for the cubic polynomial PairwiseKernel; difflens's gradient is exact "
    "(4.5e-13 from the closed form, tests/test_gp_sklearn.py) and scikit-learn passes only because its "
    "PairwiseKernel gradient is that same forward difference"
    for i in (21, 22)  # PairwiseKernel(metric="polynomial") and (metric="poly")
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        reason = OUT_OF_SCOPE.get(item.originalname if hasattr(item, "originalname") else item.name)
        in_port = "ports/sklearn" in str(item.fspath).replace("\\", "/")
        if reason and in_port:
            item.add_marker(pytest.mark.skip(reason=reason))
        known = KNOWN_REFERENCE_ERRORS.get(item.name)
        if known and in_port and item.module.__name__ == "test_kernels":
            item.add_marker(pytest.mark.xfail(reason=known, strict=True, raises=AssertionError))
