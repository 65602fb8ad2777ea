"""Writing a report: HTML as one atomic file; Markdown as an atomic ``.md`` plus its images
folder, swapped in whole (a failed export leaves the previous one, or nothing, behind)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from engine.atomic import atomic_write_text
from engine.errors import UserError
from engine.session.report.build import build_report
from engine.session.report.document import Report
from engine.session.report.to_html import render_html
from engine.session.report.to_markdown import render_markdown


def _created_parents(path: Path) -> list[Path]:
    """Folders above ``path`` that do not exist yet (deepest last)."""
    missing = []
    p = path.parent
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    return list(reversed(missing))


def _remove_dirs(dirs: list[Path]):
    for d in reversed(dirs):
        try:
            d.rmdir()
        except OSError:
            pass


def _resolve_out(session, fmt: str, out_path) -> Path:
    suffix = ".html" if fmt == "html" else ".md"
    out = Path(out_path).expanduser() if out_path else Path.cwd()
    if out.is_dir():
        out = out / f"{session.path.name}-report{suffix}"
    return out


def write_report(session, fmt: str = "html", out_path: str | os.PathLike | None = None,
                 report: Report | None = None) -> Path:
    """Write the report and return its path. ``out_path`` may be a folder (the file is named after
    the session). For Markdown the images go to ``<stem>_files/`` beside the file. An unwritable
    destination raises UserError and leaves nothing behind (a previous export stays as it was)."""
    fmt = (fmt or "html").lower()
    if fmt in ("markdown",):
        fmt = "md"
    if fmt not in ("html", "md"):
        raise UserError(f"unknown report format {fmt!r}: choose html or md")
    out = _resolve_out(session, fmt, out_path)
    if out.exists() and out.is_dir():
        raise UserError(f"cannot write {out}: it is a directory")
    report = report if report is not None else build_report(session)
    new_dirs = _created_parents(out)
    try:
        if fmt == "html":
            atomic_write_text(out, render_html(report))
        else:
            _write_markdown(report, out)
    except BaseException:
        _remove_dirs(new_dirs)
        raise
    return out


def _write_markdown(report: Report, out: Path):
    images_name = f"{out.stem}_files"
    text, images = render_markdown(report, images_name)
    final_dir = out.parent / images_name
    if not images:
        atomic_write_text(out, text)
        return
    tmp_dir = old_dir = None
    installed = False
    try:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp_dir = Path(tempfile.mkdtemp(prefix=f".{images_name}.", suffix=".tmp", dir=out.parent))
            for name, svg in images.items():
                (tmp_dir / name).write_text(svg, encoding="utf-8")
            if final_dir.exists() or final_dir.is_symlink():
                if not final_dir.is_dir() or final_dir.is_symlink():
                    raise UserError(f"cannot write {final_dir}: something that is not a folder is in the way")
                old_dir = Path(tempfile.mkdtemp(prefix=f".{images_name}.old.", dir=out.parent))
                os.rmdir(old_dir)
                os.replace(final_dir, old_dir)
            os.replace(tmp_dir, final_dir)
            installed, tmp_dir = True, None
        except OSError as exc:
            raise UserError(f"cannot write {final_dir}: {exc.strerror or exc}") from None
        atomic_write_text(out, text)
    except BaseException:
        if installed:
            shutil.rmtree(final_dir, ignore_errors=True)
        if old_dir is not None and old_dir.exists():
            os.replace(old_dir, final_dir)
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    if old_dir is not None:
        shutil.rmtree(old_dir, ignore_errors=True)
