"""The real-server tests from a checkout inside a closed home folder (mode 700): PostgreSQL,
which runs as an unprivileged user when the tests run as root, must still start."""

import shutil

import pytest

from tests.servers import pg_bin, postgres, unavailable

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def test_postgres_starts_from_programs_inside_a_mode_700_folder(tmp_path):
    found = pg_bin()
    if found is None:
        unavailable("no PostgreSQL programs: `make venv` installs them (pgserver)")
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    home.chmod(0o700)  # as a home folder is on many machines
    site = home / "checkout" / ".venv" / "lib" / "site-packages"  # the wheel's layout, copied
    install = site / found.parent.parent.name / found.parent.name
    shutil.copytree(found.parent, install, symlinks=True, ignore=shutil.ignore_patterns("include"))
    for libs in found.parent.parent.parent.glob(f"{found.parent.parent.name}.libs"):
        shutil.copytree(libs, site / libs.name, symlinks=True)
    with postgres(install / "bin") as uri:
        import sqlalchemy

        engine = sqlalchemy.create_engine(uri)
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("select 1")).scalar() == 1
        engine.dispose()
