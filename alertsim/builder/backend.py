"""The builder as the page's server sees it: preview, save and start a drill, each from
the page's JSON (`alertsim.web.builder_app.BuilderBackend` is the shape it fills).

Bad input raises InputError (the page shows each problem); a scenario the loader refuses
raises ScenarioError.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alertsim.builder.launch import DrillRuns
from alertsim.builder.preview import Preview, draft_of, preview
from alertsim.builder.save import file_name, save_scenario
from alertsim.builder.sites import SITES
from alertsim.domain.prefectures import Atlas
from alertsim.errors import InputError

__all__ = ["Builder"]


def _fields(body: object, *names: str) -> list[object]:
    if not isinstance(body, dict):
        raise InputError("body", ["expected a JSON object"])
    missing = [n for n in names if n not in body]
    if missing:
        raise InputError("body", [f"{n}: field required" for n in missing])
    return [body[n] for n in names]


@dataclass
class Builder:
    """Previews drafts with `atlas`, saves scenarios in `folder`, starts their drills."""

    atlas: Atlas
    folder: Path
    drills: DrillRuns = field(init=False)

    def __post_init__(self) -> None:
        self.drills = DrillRuns(self.folder / "reports")

    def sites(self) -> list[dict[str, Any]]:
        """The documented launch sites, as the page lists them."""
        return [{"key": s.key, "name_ja": s.name_ja, "name_en": s.name_en, "lat": s.lat,
                 "lon": s.lon, "source": s.source} for s in SITES]

    def preview(self, body: object) -> Preview:
        """The preview of the draft in `body`."""
        return preview(draft_of(body), self.atlas)

    def save(self, body: object) -> Path:
        """`{"draft": ..., "name": "x.yaml"}`: the scenario written, once the loader
        accepts it."""
        draft, name = _fields(body, "draft", "name")
        if not isinstance(name, str):
            raise InputError("name", ["expected a file name"])
        try:
            previewed = self.preview(draft)
        except InputError as exc:
            raise InputError("draft", [f"draft.{p}" for p in exc.problems]) from exc
        return save_scenario(previewed, self.folder, file_name(name))

    async def start_drill(self, body: object) -> str:
        """`{"name": "x.yaml"}` (a scenario saved here): its drill's dashboard URL."""
        name, = _fields(body, "name")
        if not isinstance(name, str):
            raise InputError("name", ["expected a file name"])
        path = self.folder / file_name(name)
        if not path.is_file():
            raise InputError("name", [f"no saved scenario {path.name!r}: save it first"])
        return await self.drills.start(path)

    async def close(self) -> None:
        """End every drill started here."""
        await self.drills.stop_all()
