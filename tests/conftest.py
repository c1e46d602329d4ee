"""Test set-up. eventlet patches the standard library first, before kombu, psycopg2 or requests
are imported, exactly as in a `nameko run` process."""

import eventlet

eventlet.monkey_patch()

import os  # noqa: E402
import warnings  # noqa: E402

import pytest  # noqa: E402

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
os.environ.setdefault("LIANDONG_RUN_DIR", "/tmp/liandong-test-run"
                      + os.environ.get("LIANDONG_TEST_ISOLATION", ""))

from support import TEST_SITE, CityPlatform  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--keep-platform", action="store_true",
                     help="leave the test cities' processes running after the session")


@pytest.fixture(scope="session")
def site():
    return TEST_SITE


@pytest.fixture(scope="session")
def platform(request):
    """Taicang, Jiading and Baoshan (test vhosts and databases), every service of each, started
    once."""
    p = CityPlatform(TEST_SITE, ("taicang", "jiading", "baoshan"))
    p.start()
    yield p
    if not request.config.getoption("--keep-platform"):
        p.stop()
