"""The web process on PostgreSQL holds a bounded pool of connections: under 40 concurrent
requests it never opens more than ONFH_DB_POOL_MAX (the load benchmark found daphne's
per-thread persistent connections exhausting max_connections: "too many clients")."""

from __future__ import annotations

import threading
import uuid

import pytest

from tests.conftest import LivePortal

pytestmark = [pytest.mark.production, pytest.mark.timeout(600)]
PG = ("127.0.0.1", 5432)


def test_daphne_uses_at_most_the_pool_size_of_connections(tmp_path) -> None:
    import psycopg

    try:
        admin = psycopg.connect(host=PG[0], port=PG[1], dbname="test", autocommit=True)
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL is a required peer: {error}")
    name = f"onfh_pool_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    portal = LivePortal(
        tmp_path / "var",
        {
            "DATABASE_URL": f"postgres://{PG[0]}:{PG[1]}/{name}",
            "SECRET_KEY": "pool-test-secret-key-not-for-real-use-0123456789abcdef",
            "ONFH_DB_POOL_MAX": "3",
        },
    )
    try:
        portal.manage("migrate", "--noinput", "-v", "0")
        portal.create_user()
        portal.start_server()
        codes: list[int] = []
        peak = [0]
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                row = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [name]
                ).fetchone()
                peak[0] = max(peak[0], row[0] if row else 0)
                stop.wait(0.05)

        def client() -> None:
            conn = portal.connection()
            for _ in range(5):
                code, _ = portal.get_json(conn, "/api/studies/")
                codes.append(code)

        watcher = threading.Thread(target=watch)
        watcher.start()
        threads = [threading.Thread(target=client) for _ in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stop.set()
        watcher.join()
        assert codes == [200] * 200
        assert 1 <= peak[0] <= 3, peak[0]
    finally:
        portal.stop_all()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
