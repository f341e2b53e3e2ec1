"""The docs keep up with the code: settings, routes and the test command.

* every ``Settings`` field has a row (``SYNCD_<FIELD>``) in README.md's configuration table,
  with its real default, and the table has no row for a setting that does not exist;
* every route in ``ROUTES`` appears in docs/api.md as ``METHOD /path`` (with ``{db:regex}``
  patterns written ``{db}``);
* README.md contains, verbatim, the test command that .ci/run runs.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from syncd.config import Secret, Settings, env_name
from syncd.web.routes import ROUTES

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
API_DOC = ROOT / "docs" / "api.md"
CI_SCRIPT = ROOT / ".ci" / "run"
CI_MARKER = "the README's test command"


def normalise_path(path: str) -> str:
    """``/{db:[^/_][^/]*}/{docid:[^/]+}`` -> ``/{db}/{docid}`` (regexes may hold braces)."""
    out: list[str] = []
    i = 0
    while i < len(path):
        if path[i] != "{":
            out.append(path[i])
            i += 1
            continue
        depth, j = 1, i + 1
        while depth:
            depth += {"{": 1, "}": -1}.get(path[j], 0)
            j += 1
        name = path[i + 1 : j - 1].split(":", 1)[0]
        out.append("{" + name + "}")
        i = j
    return "".join(out)


def test_normalise_path_drops_patterns() -> None:
    assert normalise_path("/{db:[^/_][^/]*}/_changes") == "/{db}/_changes"
    assert normalise_path("/{db:[^/_][^/]*}/{docid:[^/]+}/{attname:.+}") == (
        "/{db}/{docid}/{attname}"
    )
    assert normalise_path("/x/{id:[0-9]{2,4}}/y") == "/x/{id}/y"
    assert normalise_path("/v1/admin/accounts/{account_id}/roles") == (
        "/v1/admin/accounts/{account_id}/roles"
    )


# --- README configuration table -----------------------------------------------------------


def _configuration_rows() -> dict[str, list[str]]:
    """The rows of the table under README's "Configuration" heading: variable -> cells."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(
        (i for i, line in enumerate(lines) if re.match(r"^#+\s+Configuration\b", line)), None
    )
    assert start is not None, "README.md has no 'Configuration' section"
    rows: dict[str, list[str]] = {}
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`?(SYNCD_[A-Z0-9_]+)`?", cells[0])
        if match:
            rows[match.group(1)] = cells
    return rows


def _default_text(value: object) -> str | None:
    """How a default must appear in the table (None: any wording, e.g. "unset")."""
    if value is None or isinstance(value, Secret) or value == ():
        return None
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    rows = _configuration_rows()
    fields = {env_name(f.name): f for f in dataclasses.fields(Settings)}
    missing = sorted(set(fields) - set(rows))
    unknown = sorted(set(rows) - set(fields))
    assert not missing, f"README configuration table lacks {missing}"
    assert not unknown, f"README configuration table lists settings that do not exist: {unknown}"


def test_readme_configuration_defaults_match_settings() -> None:
    rows = _configuration_rows()
    defaults = Settings()
    wrong = []
    for field in dataclasses.fields(Settings):
        expected = _default_text(getattr(defaults, field.name))
        cells = rows.get(env_name(field.name))
        if expected is None or cells is None or len(cells) < 2:
            continue
        if expected not in cells[1]:
            wrong.append(
                f"{env_name(field.name)}: default is {expected!r}, table says {cells[1]!r}"
            )
    assert not wrong, "\n".join(wrong)


# --- docs/api.md --------------------------------------------------------------------------


def test_every_route_is_in_the_api_reference() -> None:
    text = API_DOC.read_text(encoding="utf-8")
    missing = []
    for route in ROUTES:
        entry = f"{route.method} {normalise_path(route.path)}"
        # The path must end there: "GET /{db}" is not found inside "GET /{db}/_changes".
        if not re.search(re.escape(entry) + r"(?![\w/{}])", text):
            missing.append(entry)
    assert not missing, f"docs/api.md does not document: {missing}"


# --- the README's test command ------------------------------------------------------------


def ci_test_command() -> str:
    """The command on the line after .ci/run's marker comment ("the README's test command").

    The phrase may appear in other comments too (the script's header); the marker is the one
    followed by a command rather than by another comment.
    """
    lines = [line.strip() for line in CI_SCRIPT.read_text(encoding="utf-8").splitlines()]
    for index, line in enumerate(lines):
        if CI_MARKER not in line:
            continue
        following = next((later for later in lines[index + 1 :] if later), "")
        if following and not following.startswith("#"):
            return following
    raise AssertionError(f".ci/run has no command after a line mentioning {CI_MARKER!r}")


def test_readme_has_the_test_command_ci_runs() -> None:
    command = ci_test_command()
    assert command in README.read_text(encoding="utf-8"), (
        f"README.md must contain the test command .ci/run runs, verbatim:\n{command}"
    )
