"""Failed-login limiting: the pure window, and the service refusing guesses with 429."""

from __future__ import annotations

import pytest

from flashcards._sync.database import Database
from flashcards._sync.service import Service
from flashcards.errors import RateLimited, Unauthenticated
from flashcards.ratelimit import FailureWindow
from tests.support import make_settings


def test_window_blocks_after_limit_and_reopens() -> None:
    window = FailureWindow(limit=3, window_s=60)
    for t in (0.0, 1.0, 2.0):
        assert window.retry_after("user:a", t) == 0
        window.record_failure("user:a", t)
    assert window.retry_after("user:a", 3.0) == 57  # the oldest failure leaves the window at 60
    assert window.retry_after("user:b", 3.0) == 0  # other keys are unaffected
    assert window.retry_after("user:a", 60.0) == 0


def test_window_memory_is_bounded() -> None:
    window = FailureWindow(limit=1, window_s=60, max_keys=10)
    for i in range(100):
        window.record_failure(f"client:{i}", 0.0)
    assert len(window._failures) == 10
    assert window.retry_after("client:99", 1.0) > 0  # the newest keys are kept


@pytest.fixture()
def service(tmp_path):  # type: ignore[no-untyped-def]
    settings = make_settings(f"sqlite:///{tmp_path / 'rl.sqlite3'}", login_rate_per_minute=3,
                             login_client_rate_per_minute=5)
    svc = Service(settings, database=Database(settings))
    svc.db.create_schema()
    svc.register({"username": "alice", "display_name": "A", "password": "correct horse"})
    svc.register({"username": "bob", "display_name": "B", "password": "correct horse"})
    yield svc
    svc.close()


def test_login_guesses_per_user_get_429_but_the_right_password_is_not_counted(service: Service) -> None:
    for _ in range(5):  # successes never count
        service.login({"username": "alice", "password": "correct horse"}, client="10.0.0.1")
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            service.login({"username": "alice", "password": "wrong guess"}, client="10.0.0.1")
    with pytest.raises(RateLimited) as info:
        service.login({"username": "alice", "password": "correct horse"}, client="10.0.0.1")
    assert 1 <= info.value.retry_after <= 60
    assert info.value.status == 429
    # the owner from an address that has not failed is not locked out (issue 19)
    assert service.login({"username": "alice", "password": "correct horse"}, client="10.0.0.2").access_token
    # another account from another client is not affected
    assert service.login({"username": "bob", "password": "correct horse"}, client="10.0.0.3").access_token


def test_login_guesses_per_client_across_usernames_get_429(service: Service) -> None:
    for i in range(5):
        with pytest.raises(Unauthenticated):
            service.login({"username": f"nobody{i}", "password": "wrong guess"}, client="10.9.9.9")
    with pytest.raises(RateLimited):
        service.login({"username": "bob", "password": "correct horse"}, client="10.9.9.9")
    assert service.login({"username": "bob", "password": "correct horse"}, client="10.1.1.1").access_token
