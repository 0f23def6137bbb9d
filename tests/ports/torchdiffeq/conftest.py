"""torchdiffeq's ported tests: one thread, and the peer_port mark registered."""


def pytest_configure(config):
    config.addinivalue_line("markers", "peer_port: a mechanical port of a peer library's own tests")
