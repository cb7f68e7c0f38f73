"""The one registry behind exporters, similarity methods, sandbox backends, split formats and items."""

import subprocess
import sys
from pathlib import Path

import pytest

from grader.registry import Registry

REPO = Path(__file__).resolve().parents[1]


class NoSuchThing(ValueError):
    pass


@pytest.fixture
def lazy_module(tmp_path, monkeypatch):
    """A module on sys.path that no one has imported yet: registry_probe.VALUE and registry_probe.ready()."""
    (tmp_path / "registry_probe.py").write_text("VALUE = 42\nREADY = True\n\ndef ready():\n    return READY\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "registry_probe", raising=False)
    yield "registry_probe"
    sys.modules.pop("registry_probe", None)


def test_an_entry_registered_by_call_or_decorator_comes_back_by_name():
    things = Registry[object]("thing")
    things.register("one", 1)

    @things.register("double")
    def double(x):
        return 2 * x

    assert things.get("one") == 1
    assert things.get("double") is double
    assert things.names() == ["one", "double"]  # the order registered


def test_a_dotted_entry_is_imported_only_when_asked_for(lazy_module):
    things = Registry[int]("thing")
    things.register("answer", f"{lazy_module}:VALUE", available=f"{lazy_module}:ready")
    assert things.names() == ["answer"]
    assert lazy_module not in sys.modules
    assert things.get("answer") == 42
    assert lazy_module in sys.modules


def test_a_second_entry_with_the_same_name_is_refused():
    things = Registry[int]("thing")
    things.register("one", 1)
    with pytest.raises(ValueError, match="two thing entries named 'one'"):
        things.register("one", 2)
    assert things.get("one") == 1


def test_an_unknown_name_raises_the_subsystem_error_with_a_suggestion_and_the_known_names():
    things = Registry[int]("thing", error=NoSuchThing, aliases={"uno": "one"})
    things.register("one", 1)
    things.register("two", 2)
    with pytest.raises(NoSuchThing) as caught:
        things.get("onw")
    assert str(caught.value) == "unknown thing 'onw'; did you mean 'one'? (known: one, two)"
    with pytest.raises(NoSuchThing, match="did you mean 'one'"):
        things.get("Uno")  # an alias suggests the name it stands for
    with pytest.raises(NoSuchThing, match=r"^unknown thing 'zzz' \(known: one, two\)$"):
        things.get("zzz")


def test_the_default_error_is_a_lookup_error():
    with pytest.raises(LookupError, match="unknown thing 'x'"):
        Registry[int]("thing").get("x")


def test_preferred_lists_available_entries_most_preferred_first(lazy_module, monkeypatch):
    things = Registry[str]("method", error=NoSuchThing)
    things.register("fast", f"{lazy_module}:VALUE", available=f"{lazy_module}:ready", preference=10)
    things.register("slow", f"{lazy_module}:VALUE")
    things.register("never", f"{lazy_module}:VALUE", available=lambda: False, preference=99)
    assert things.preferred() == ["fast", "slow"]

    import registry_probe

    monkeypatch.setattr(registry_probe, "READY", False)  # availability is asked again each time
    assert things.preferred() == ["slow"]
    with pytest.raises(NoSuchThing, match="method 'fast' is not installed"):
        things.get("fast")
    with pytest.raises(NoSuchThing, match="method 'never' is not installed"):
        things.get("never")


def test_importing_the_registries_imports_no_heavy_module():
    code = (
        "import sys\n"
        "import grader.registry, grader.export.base, grader.answers.similarity, grader.sandbox.base, grader.datasets\n"
        "heavy = ('torch', 'docker', 'sentence_transformers', 'pandas', 'PIL', 'grader.sandbox.docker')\n"
        "print([name for name in heavy if name in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert done.stdout.strip() == "[]", done.stderr


def test_each_subsystem_reports_an_unknown_name_in_its_own_error_type():
    from grader.answers.similarity import resolve_method_name
    from grader.datasets import DatasetError, load_split
    from grader.export.base import ExportError, get_exporter
    from grader.sandbox.base import SandboxUnavailable, backend_names, get_backend

    assert backend_names() == ["auto", "docker", "local"]
    with pytest.raises(SandboxUnavailable, match="unknown sandbox backend 'dockr'; did you mean 'docker'"):
        get_backend("dockr")
    with pytest.raises(ExportError, match="did you mean 'bb-tab'"):
        get_exporter("tab")
    with pytest.raises(ValueError, match="unknown similarity method 'tfid'; did you mean 'tfidf'"):
        resolve_method_name("tfid")
    with pytest.raises(DatasetError, match="unknown split format 'nzp'; did you mean 'npz'"):
        load_split("unused", "nzp")
