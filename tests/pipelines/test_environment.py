"""pipelines.environment: the versions and CPU a result was produced with."""

from pipelines import environment


def test_describe_names_the_cpu_the_packages_and_the_lock():
    env = environment.describe()
    assert env["cpu_model"] and env["cpu_count"] >= 1
    for pkg in ("torch", "ray", "mlflow", "dvc"):
        assert env["versions"][pkg] not in ("", "absent")
    assert len(env["lock_sha256"]) == 16  # the committed requirements.lock
    tags = environment.as_tags(env)
    assert tags["dplc.env.torch"] == env["versions"]["torch"]
    assert tags["dplc.env.cpu_model"] == env["cpu_model"]


def test_an_absent_package_is_named_absent():
    assert environment.versions(("no-such-package-dplc",))["no-such-package-dplc"] == "absent"


def test_installed_versions_match_the_lock():
    """The environment was installed from requirements.lock (scripts/setup.sh)."""
    pinned = {}
    for line in environment.LOCK.read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")) and "python_full_version >=" not in line:
            name, _, rest = line.partition("==")
            pinned[name.strip().lower()] = rest.split(";")[0].strip()
    got = environment.versions(("torch", "ray", "mlflow", "dvc", "pyarrow"))
    for pkg in ("torch", "ray", "mlflow", "dvc", "pyarrow"):
        assert got[pkg].split("+")[0] == pinned[pkg], pkg
