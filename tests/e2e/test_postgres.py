"""The throwaway PostgreSQL cluster cleans up after itself, also when it fails to start."""

import pytest

from e2e.ports import is_port_free
from e2e.postgres import EmbeddedPostgres, EmbeddedPostgresError


def test_a_failed_start_leaves_no_server_behind() -> None:
    cluster = EmbeddedPostgres(database="postgres")  # exists already: createdb fails after the server started
    with pytest.raises(EmbeddedPostgresError, match="already exists"):
        cluster.start()
    assert cluster.data_root is None
    assert cluster.port is not None and is_port_free(cluster.port)
